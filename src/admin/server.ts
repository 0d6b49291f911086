import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import type { Store } from '../cache/store.js';
import { type AdminConfig, parseListen } from '../config/schema.js';
import { isSidecacheError } from '../errors.js';
import type { InvalidationTarget } from '../cache/types.js';
import type { LocalInvalidation } from '../invalidation/fanout.js';
import { parseInvalidation } from '../invalidation/message.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/registry.js';
import { hasBearer } from '../auth.js';
import { refuseBrowserRequest } from './browser-guard.js';
import { summarizeCache } from './cache-summary.js';
import { LIVE_PAGE, liveDocument, type RecentInvalidations } from './live.js';
import type { Readiness } from './readiness.js';

/** Invalidation bodies are small; anything larger is a mistake or an attack. */
const MAX_BODY_BYTES = 1024 * 1024;

export interface AdminDeps {
  config: AdminConfig;
  store: Store;
  registry: Registry;
  metrics: Metrics;
  /** A local invalidation: applied here, then published on every bus (`invalidation/fanout.ts`). */
  invalidate(target: InvalidationTarget, source: string): LocalInvalidation;
  readiness: Readiness;
  recent: RecentInvalidations;
  log: Logger;
  /** Reads the configuration file again and applies what can be applied (`POST /reload`). */
  reload(): Promise<unknown>;
  /** Whether a Postgres listener would cache `sql`; undefined when there is no such listener. */
  explain(listener: string, sql: string, database: string | undefined, user: string | undefined): Promise<unknown> | undefined;
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
    ['/cache', { method: 'GET', handler: async (_req, res) => json(res, 200, await summarizeCache(deps.store, deps.metrics)) }],
    ['/invalidate', { method: 'POST', handler: (req, res) => invalidate(deps, req, res) }],
    ['/reload', { method: 'POST', handler: (req, res) => reload(deps, req, res) }],
    ['/cache/explain', { method: 'GET', guarded: true, handler: (req, res) => explain(deps, req, res) }],
    ['/', { method: 'GET', handler: (_req, res) => page(res) }],
    ['/live', { method: 'GET', handler: async (_req, res) => json(res, 200, await liveDocument(deps.store, deps.metrics, deps.recent)) }],
  ]);
  const listenHost = parseListen(deps.config.listen)?.host ?? '';
  return http.createServer((req, res) => {
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
  json(res, 200, { invalidated: removed });
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

/** `GET /cache/explain?listener=NAME&sql=...[&database=D&user=U]`. */
async function explain(deps: AdminDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const query = new URL(req.url ?? '/', 'http://admin').searchParams;
  const listener = query.get('listener') ?? '';
  const sql = query.get('sql');
  if (sql === null) return json(res, 400, { error: 'the sql parameter is required' });
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
