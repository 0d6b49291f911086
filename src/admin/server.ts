import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import type { Store } from '../cache/store.js';
import { parseListen } from '../config/fields.js';
import type { AdminConfig } from '../config/schema.js';
import { isSidecacheError } from '../errors.js';
import type { InvalidationTarget } from '../cache/types.js';
import type { LocalInvalidation } from '../invalidation/fanout.js';
import { parseInvalidation } from '../invalidation/message.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/registry.js';
import { hasBearer } from '../auth.js';
import { refuseBrowserRequest } from './browser-guard.js';
import type { CacheSummary } from './cache-summary.js';
import { type EntryQuery, parseEntryQuery } from './entries.js';
import { LIVE_PAGE, liveDocument, RatioWindow, type RecentInvalidations, sampleRatios } from './live.js';
import type { Readiness } from './readiness.js';

/** Invalidation bodies are small; anything larger is a mistake or an attack. */
const MAX_BODY_BYTES = 1024 * 1024;

export interface AdminDeps {
  config: AdminConfig;
  store: Store;
  /** What `/metrics` answers (with `workers`, the workers' registries aggregated). */
  registry: Pick<Registry, 'metrics' | 'contentType' | 'getMetricsAsJSON'>;
  metrics: Metrics;
  /**
   * A local invalidation: applied here, then published on every bus (`invalidation/fanout.ts`); with
   * `workers`, applied by every worker, `removed` their sum.
   */
  invalidate(target: InvalidationTarget, source: string): { removed: number | Promise<number>; published: LocalInvalidation['published'] };
  /** The `GET /cache` document (with `workers`, merged across them). */
  summary(): Promise<CacheSummary>;
  /** The `GET /cache/entries` document for `query` (with `workers`, merged, each entry labelled with its worker). */
  entries(query: EntryQuery): Promise<{ entries: unknown[] }>;
  readiness: Readiness;
  recent: RecentInvalidations;
  log: Logger;
  /** Reads the configuration file again and applies what can be applied (`POST /reload`). */
  reload(): Promise<unknown>;
  /** Whether a Postgres listener would cache `sql`; undefined when there is no such listener. */
  explain(listener: string, sql: string, database: string | undefined, user: string | undefined): Promise<unknown> | undefined;
  /** What an HTTP listener would do with a request; undefined when there is no such listener. */
  explainHttp(listener: string, url: string, method: string, headers: IncomingHttpHeaders, reveal: boolean): object | Promise<object> | undefined;
  /** Each bus and whether it is subscribed (the live page). */
  buses(): { name: string; connected: boolean; reason: string | null }[];
}

type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void> | void;
interface Route {
  method: 'GET' | 'POST';
  handler: Handler;
  /** Needs the token when one is set (every POST, and GETs that make sidecache do work upstream). */
  guarded?: boolean;
}

/** The admin routes (docs/contracts.md "Admin API"). */
export function createAdminServer(deps: AdminDeps): http.Server {
  const routes = new Map<string, Route>([
    ['/metrics', { method: 'GET', handler: (_req, res) => metrics(deps, res) }],
    ['/healthz', { method: 'GET', handler: (_req, res) => json(res, 200, { status: 'ok' }) }],
    ['/readyz', { method: 'GET', handler: (_req, res) => readyz(deps, res) }],
    ['/cache', { method: 'GET', handler: async (_req, res) => json(res, 200, await deps.summary()) }],
    ['/invalidate', { method: 'POST', handler: (req, res) => invalidate(deps, req, res) }],
    ['/reload', { method: 'POST', handler: (req, res) => reload(deps, req, res) }],
    ['/cache/explain', { method: 'GET', guarded: true, handler: (req, res) => explain(deps, req, res) }],
    ['/', { method: 'GET', handler: (_req, res) => page(res) }],
    ['/live', { method: 'GET', handler: async (_req, res) => json(res, 200, await liveDocument({ ...deps, window })) }],
    ['/cache/entries', { method: 'GET', guarded: true, handler: (req, res) => entries(deps, req, res) }],
  ]);
  const window = new RatioWindow();
  const stopSampling = sampleRatios(window, () => deps.summary());
  const listenHost = parseListen(deps.config.listen)?.host ?? '';
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    const route = routes.get(path);
    if (route === undefined) return json(res, 404, { error: `no route ${path}` });
    const method = req.method === 'HEAD' ? 'GET' : req.method;
    if (method !== route.method) {
      res.setHeader('Allow', route.method === 'GET' ? 'GET, HEAD' : route.method);
      return json(res, 405, { error: `${req.method} is not allowed on ${path}` });
    }
    if ((route.method === 'POST' || route.guarded) && deps.config.token !== '' && !hasBearer(req.headers.authorization, deps.config.token)) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="sidecache"');
      return json(res, 401, { error: 'this route requires Authorization: Bearer <admin.token>' });
    }
    const write = route.method === 'POST';
    const refused = write || route.guarded ? refuseBrowserRequest(req, { write, tokenSet: deps.config.token !== '', listenHost }) : undefined;
    if (refused !== undefined) {
      req.resume();
      return json(res, refused.status, { error: refused.error });
    }
    Promise.resolve(route.handler(req, res)).catch((err: unknown) => {
      deps.log.error('admin request failed', { path, err });
      if (!res.headersSent) json(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });
  server.once('close', stopSampling);
  return server;
}

async function metrics(deps: AdminDeps, res: ServerResponse): Promise<void> {
  const text = await deps.registry.metrics();
  res.writeHead(200, { 'Content-Type': deps.registry.contentType });
  res.end(text);
}

function readyz(deps: AdminDeps, res: ServerResponse): void {
  const { status, body } = deps.readiness.answer();
  json(res, status, body);
}

async function invalidate(deps: AdminDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = await readBody(req, MAX_BODY_BYTES);
  if (body === undefined) return json(res, 413, { error: `the message is larger than ${MAX_BODY_BYTES} bytes` });
  let target;
  try {
    target = parseInvalidation(body);
  } catch (err) {
    if (!isSidecacheError(err)) throw err;
    deps.metrics.invalidationErrors.inc({ source: 'admin' });
    return json(res, 400, { error: err.message });
  }
  // Answered once the other replicas were told too (or the publish wait ran out; the outbox keeps it).
  const { removed, published } = deps.invalidate(target, 'admin');
  await published;
  json(res, 200, { invalidated: await removed });
}

async function reload(deps: AdminDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  req.resume();
  try {
    json(res, 200, await deps.reload());
  } catch (err) {
    if (!isSidecacheError(err)) throw err;
    // The old configuration keeps running.
    json(res, 400, { error: err.message });
  }
}

function page(res: ServerResponse): void {
  res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': Buffer.byteLength(LIVE_PAGE), 'Cache-Control': 'no-store' });
  res.end(LIVE_PAGE);
}

/**
 * `?reveal=1` shows query strings, Vary values, SQL literals and bind values: only with a token set
 * (the route then already checked it). Without one, anyone who reaches the admin could read them.
 */
function revealOf(deps: AdminDeps, query: URLSearchParams, res: ServerResponse): boolean | undefined {
  if (query.get('reveal') !== '1') return false;
  if (deps.config.token !== '') return true;
  json(res, 403, { error: 'reveal=1 needs admin.token: without it, query strings, SQL literals and bind values stay hidden' });
  return undefined;
}

/** `GET /cache/entries?protocol=&listener=&prefix=&tag=&sort=hits|bytes|age&limit=&reveal=1`. */
async function entries(deps: AdminDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const params = new URL(req.url ?? '/', 'http://admin').searchParams;
  const query = parseEntryQuery(params);
  if (typeof query === 'string') return json(res, 400, { error: query });
  if (revealOf(deps, params, res) === undefined) return;
  json(res, 200, await deps.entries(query));
}

/** `GET /cache/explain?listener=NAME&url=/path[&method=GET&header=Name:%20value…&reveal=1]` for HTTP. */
async function explainUrl(deps: AdminDeps, query: URLSearchParams, url: string, res: ServerResponse): Promise<void> {
  const reveal = revealOf(deps, query, res);
  if (reveal === undefined) return;
  const headers: IncomingHttpHeaders = {};
  for (const field of query.getAll('header')) {
    const colon = field.indexOf(':');
    if (colon <= 0) return json(res, 400, { error: `expected header to be "Name: value", got ${JSON.stringify(field)}` });
    headers[field.slice(0, colon).trim().toLowerCase()] = field.slice(colon + 1).trim();
  }
  const listener = query.get('listener') ?? '';
  const answer = deps.explainHttp(listener, url, (query.get('method') ?? 'GET').toUpperCase(), headers, reveal);
  if (answer === undefined) return json(res, 404, { error: `no http listener named "${listener}"` });
  json(res, 200, { listener, ...(await answer) });
}

/** `GET /cache/explain?listener=NAME&sql=...[&database=D&user=U]`, or `&url=` for an HTTP listener. */
async function explain(deps: AdminDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const query = new URL(req.url ?? '/', 'http://admin').searchParams;
  const listener = query.get('listener') ?? '';
  const url = query.get('url');
  if (url !== null) return explainUrl(deps, query, url, res);
  const sql = query.get('sql');
  if (sql === null) return json(res, 400, { error: 'the sql or url parameter is required' });
  const database = query.get('database') ?? undefined;
  const user = query.get('user') ?? undefined;
  // Without a token anyone may ask, but only as the listener's own catalog user: nobody makes
  // sidecache connect as another role, nor fills the memos sessions share with such answers.
  if (deps.config.token === '' && user !== undefined) {
    return json(res, 403, { error: "the user parameter needs admin.token: without it, /cache/explain answers only as the listener's own catalog user" });
  }
  const answer = deps.explain(listener, sql, database, user);
  if (answer === undefined) return json(res, 404, { error: `no postgres listener named "${listener}"` });
  json(res, 200, { listener, sql, ...((await answer) as object) });
}

/** The body as text, or undefined once it passes `limit` bytes. */
function readBody(req: IncomingMessage, limit: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        resolve(undefined);
      } else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body) + '\n';
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store' });
  res.end(text);
}
