import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { EntryInput } from '../../cache/types.js';
import type { Dispatcher } from 'undici';
import { whenWritable } from '../../drain.js';
import { formatCacheStatus } from './cache-status.js';
import type { Exchange, ListenerContext } from './context.js';
import { ageOf, type HttpEntry, type HttpMeta, prepareHeaders, writePrepared } from './entry.js';
import { clientResponseHeaders, forwardRequestHeaders, readTags } from './headers.js';
import { urlTag } from '../../cache/tags.js';
import { variantKey } from './key.js';
import { decideStorage, freshenHeaders, type StoreDecision, varyNames } from './policy.js';

/**
 * Thrown by a fill whose upstream answered 5xx while a stale copy may still stand in for it
 * (`stale-if-error`, RFC 5861 §4). The caller serves the stale copy.
 */
export class UpstreamStatusError extends Error {
  readonly status: number;

  constructor(status: number) {
    super(`the upstream answered ${status}`);
    this.name = 'UpstreamStatusError';
    this.status = status;
  }
}

/** Reasons not to store that say nothing about the next response (errors, this client's own request): no hit-for-miss. */
const TRANSIENT = /^(status-5|request-|authorization)/;

/**
 * Asks the upstream for the exchange's URL and returns what the store should keep, or null when
 * the response must not be shared. When `client` is given, the response streams to it as it
 * arrives (this caller leads the fill). With `stale`, the request is conditional and a 304
 * refreshes the stale entry (RFC 9111 §4.3.4).
 */
export async function fetchForStore(
  ctx: ListenerContext,
  ex: Exchange,
  client: ServerResponse | undefined,
  stale: HttpEntry | undefined,
): Promise<EntryInput<HttpMeta> | null> {
  const controller = new AbortController();
  if (client !== undefined) {
    client.once('close', () => {
      // A leader's client that leaves ends the upstream request, unless others wait on it.
      if (!client.writableFinished && (ctx.store.flightOf(ex.key)?.waiters ?? 0) === 0) controller.abort();
    });
  }
  const headers = forwardRequestHeaders(ex.req, { upstreamHost: ctx.upstream.host, mode: ctx.config.forwardedHeaders, unconditional: true });
  if (stale?.meta.etag !== undefined) headers.push('if-none-match', stale.meta.etag);
  if (stale?.meta.lastModified !== undefined) headers.push('if-modified-since', stale.meta.lastModified);
  const upstreamStart = ctx.clock.now();
  const response = await ctx.upstream.request({ method: 'GET', url: ex.url, headers, body: null, signal: controller.signal });
  if (response.statusCode === 304 && stale !== undefined) {
    await response.body.dump();
    return refreshed(ctx, ex, client, stale, response.headers, upstreamStart);
  }
  if (response.statusCode >= 500 && stale !== undefined && ctx.clock.now() < stale.meta.sieUntil) {
    await response.body.dump();
    throw new UpstreamStatusError(response.statusCode);
  }
  return receive(ctx, ex, client, response, upstreamStart);
}

async function receive(
  ctx: ListenerContext,
  ex: Exchange,
  client: ServerResponse | undefined,
  response: Dispatcher.ResponseData,
  upstreamStart: number,
): Promise<EntryInput<HttpMeta> | null> {
  const decision = decideStorage({
    Policy: ctx.Policy,
    method: 'GET',
    url: ex.url,
    requestHeaders: ex.policyHeaders,
    status: response.statusCode,
    responseHeaders: response.headers,
    route: ex.route,
    defaults: ctx.defaults,
  });
  const declared = Number(response.headers['content-length']);
  const tooLarge = Number.isFinite(declared) && declared > ctx.store.maxEntryBytes;
  const store = decision.store && !tooLarge;
  const detail = decision.store ? (tooLarge ? 'too-large' : undefined) : decision.detail;
  if (!store && (detail === undefined || !TRANSIENT.test(detail))) ctx.markHitForMiss(ex.key);

  const headerOptions = { tagHeader: ctx.tagHeader, exposeTags: ctx.config.exposeTags, mode: ctx.config.forwardedHeaders };
  if (client !== undefined && !client.destroyed) {
    const fields = clientResponseHeaders(response.headers, { ...headerOptions, dropSetCookie: false });
    const upstreamAge = single(response.headers.age);
    if (upstreamAge !== undefined) fields.push('age', upstreamAge);
    const ttlSeconds = decision.store ? Math.round(decision.lifetimes.freshMs / 1000) : undefined;
    fields.push('cache-status', formatCacheStatus({ fwd: ex.fwd, stored: store, ...(store && { ttlSeconds }), ...(detail !== undefined && { detail }) }));
    client.writeHead(response.statusCode, fields);
  }
  const body = await relay(response, client, store ? ctx.store.maxEntryBytes : 0, ex.req.method === 'HEAD');
  const upstreamMs = ctx.clock.now() - upstreamStart;
  if (client !== undefined) ctx.report('miss', ex.started, upstreamMs);
  if (!store || !decision.store || body === undefined) {
    if (store && body === undefined) ctx.markHitForMiss(ex.key);
    return null;
  }
  const fields = clientResponseHeaders(response.headers, { ...headerOptions, dropSetCookie: true });
  return buildInput(ctx, ex, response.statusCode, fields, body, decision);
}

/** A 304 to a revalidation: the stale body with the refreshed fields (RFC 9111 §4.3.4). */
function refreshed(
  ctx: ListenerContext,
  ex: Exchange,
  client: ServerResponse | undefined,
  stale: HttpEntry,
  notModified: IncomingHttpHeaders,
  upstreamStart: number,
): EntryInput<HttpMeta> | null {
  const meta = stale.meta;
  const { modified, matches } = meta.policy.revalidatedPolicy({ method: 'GET', url: ex.url, headers: ex.policyHeaders }, { status: 304, headers: notModified });
  // A 304 that does not fit the stored response stands on its own fields, as in the library.
  const merged = matches ? freshenHeaders(meta.responseHeaders, notModified) : notModified;
  const decision = modified
    ? undefined
    : decideStorage({
        Policy: ctx.Policy,
        method: 'GET',
        url: ex.url,
        requestHeaders: ex.policyHeaders,
        status: meta.status,
        responseHeaders: merged,
        route: ex.route,
        defaults: ctx.defaults,
      });
  const upstreamMs = ctx.clock.now() - upstreamStart;
  const body = stale.body as Buffer;
  const fields = clientResponseHeaders(merged, { tagHeader: ctx.tagHeader, exposeTags: ctx.config.exposeTags, mode: ctx.config.forwardedHeaders, dropSetCookie: true });
  if (decision === undefined || !decision.store) {
    // The 304 does not fit the stored response, or forbids storing it now: answer it once, keep nothing.
    if (client !== undefined) {
      const status = formatCacheStatus({ fwd: 'stale', fwdStatus: 304, detail: decision?.store === false ? decision.detail : 'mismatch' });
      writePrepared(client, meta.status, prepareHeaders(fields, body.length).headers, ageOf(stale, ctx.clock.now()), status, ex.req.method === 'HEAD' ? undefined : body);
      ctx.report('stale', ex.started, upstreamMs);
    }
    return null;
  }
  const input = buildInput(ctx, ex, meta.status, fields, body, decision, stale.key);
  if (client !== undefined) {
    const status = formatCacheStatus({ fwd: 'stale', fwdStatus: 304, stored: true, ttlSeconds: Math.round(input.ttlMs / 1000) });
    writePrepared(client, meta.status, input.meta.headers, Math.floor(input.meta.ageBase), status, ex.req.method === 'HEAD' ? undefined : body);
    ctx.report('stale', ex.started, upstreamMs);
  }
  return input;
}

function buildInput(
  ctx: ListenerContext,
  ex: Exchange,
  status: number,
  fields: readonly string[],
  body: Buffer,
  decision: StoreDecision,
  key?: string,
): EntryInput<HttpMeta> {
  const { policy, lifetimes, responseHeaders } = decision;
  const now = ctx.clock.now();
  const vary = varyNames(responseHeaders.vary);
  ctx.learnVary(ex.base, vary);
  const prepared = prepareHeaders(fields, body.length);
  const meta: HttpMeta = {
    status,
    headers: prepared.headers,
    notModified: prepared.notModified,
    ageBase: lifetimes.ageSeconds,
    etag: single(responseHeaders.etag),
    lastModified: single(responseHeaders['last-modified']),
    swrUntil: now + lifetimes.freshMs + lifetimes.swrMs,
    sieUntil: now + lifetimes.freshMs + lifetimes.sieMs,
    authorizedReuse: lifetimes.authorizedReuse,
    vary,
    policy,
    responseHeaders,
  };
  return {
    key: key ?? (vary.length === 0 ? ex.base : variantKey(ex.base, vary, ex.req.headers)),
    body,
    meta,
    // The policy keeps the response fields and, with Vary, the request's; count both roughly.
    metaBytes: prepared.bytes * 2 + 256,
    tags: [...ex.route.tags, ...readTags(responseHeaders[ctx.tagHeader]), urlTag(ctx.name, ex.url)],
    path: ex.url,
    ttlMs: lifetimes.freshMs,
    staleMs: lifetimes.keepMs,
  };
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Streams the upstream body to the client (if any) and captures up to `limit` bytes. Returns the
 * captured body, or undefined when it passed the limit (it still reached the client in full).
 */
async function relay(response: Dispatcher.ResponseData, client: ServerResponse | undefined, limit: number, headOnly: boolean): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  let capturing = limit > 0;
  for await (const chunk of response.body as AsyncIterable<Buffer>) {
    if (capturing) {
      size += chunk.length;
      if (size > limit) {
        capturing = false;
        chunks.length = 0;
      } else chunks.push(chunk);
    }
    if (client !== undefined && !client.destroyed && !headOnly) {
      client.write(chunk);
      await whenWritable(client);
    }
  }
  if (client !== undefined && !client.destroyed) client.end();
  return capturing ? Buffer.concat(chunks, size) : undefined;
}
