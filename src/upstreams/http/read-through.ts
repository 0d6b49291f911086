import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { isSidecacheError } from '../../errors.js';
import type { RequestResult } from '../../events.js';
import { type CacheStatus, type ForwardReason, formatCacheStatus, hitStatus } from './cache-status.js';
import type { Exchange, ListenerContext } from './context.js';
import { ageOf, HTTP_SPACE, type HttpEntry, ttlOf, writeNotModified, writeStored } from './entry.js';
import { fetchForStore, UpstreamStatusError } from './fill.js';
import { classifyUpstreamError, type GatewayFailure, writeGatewayError } from './gateway-error.js';
import { baseKey, variantKey } from './key.js';
import { isNotModified, readRequestDirectives, type RequestDirectives, requestAllowsStored } from './policy.js';
import type { HttpRoute } from './rules.js';

/** Callers that may wait on one fill; more go upstream on their own. */
const MAX_WAITERS = 1000;

/** Hooks the listener provides beyond the shared context. */
export interface ReadThroughContext extends ListenerContext {
  /** The Vary names stored responses of `base` use, if any were stored. */
  varyOf(base: string): readonly string[] | undefined;
  isHitForMiss(key: string): boolean;
}

/**
 * A GET or HEAD through the cache: answered from the store when a stored response may answer it
 * (fresh, or stale within stale-while-revalidate), otherwise fetched once for every concurrent
 * caller of the same key. A hit is synchronous: a lookup and one write.
 */
export function readThrough(ctx: ReadThroughContext, req: IncomingMessage, res: ServerResponse, route: HttpRoute, url: string, started: number): void {
  const base = baseKey(ctx.name, url);
  const names = ctx.varyOf(base);
  const key = names === undefined ? base : variantKey(base, names, req.headers);
  const entry = ctx.store.get(key, HTTP_SPACE);
  const directives = requestDirectives(req.headers, route);
  let fwd: ForwardReason = names === undefined ? 'uri-miss' : 'vary-miss';
  if (entry !== undefined) {
    const now = ctx.clock.now();
    const reusable = req.headers.authorization === undefined || entry.meta.authorizedReuse;
    if (reusable && allowsStored(entry, directives, now)) {
      answer(ctx, req, res, entry, now, hitStatus(ttlOf(entry, now)), 'hit', started);
      return;
    }
    if (reusable && now >= entry.freshUntil && now < entry.meta.swrUntil && directives?.noCache !== true) {
      serveStaleAndRefresh(ctx, req, res, route, url, base, entry, now, started);
      return;
    }
    fwd = !reusable || now < entry.freshUntil ? 'request' : 'stale';
  }
  const hitForMiss = ctx.isHitForMiss(key);
  if (hitForMiss && entry === undefined) fwd = 'miss';
  // Requests with credentials neither wait on others nor make others wait on them.
  const alone = hitForMiss || req.headers.authorization !== undefined;
  const ex: Exchange = { req, res, route, url, base, key, policyHeaders: policyHeaders(req.headers, route), started, fwd };
  void fetchThrough(ctx, ex, fwd === 'stale' ? entry : undefined, alone);
}

function requestDirectives(headers: IncomingHttpHeaders, route: HttpRoute): RequestDirectives | undefined {
  if (route.ignoreRequestCacheControl) return undefined;
  if (headers['cache-control'] === undefined && headers.pragma === undefined) return undefined;
  return readRequestDirectives(headers);
}

function allowsStored(entry: HttpEntry, directives: RequestDirectives | undefined, now: number): boolean {
  if (directives === undefined) return now < entry.freshUntil;
  return requestAllowsStored(directives, ageOf(entry, now), (entry.freshUntil - now) / 1000);
}

/** With `ignoreRequestCacheControl`, the client's directives do not reach the policy either. */
function policyHeaders(headers: IncomingHttpHeaders, route: HttpRoute): IncomingHttpHeaders {
  if (!route.ignoreRequestCacheControl) return headers;
  const copy = { ...headers };
  delete copy['cache-control'];
  delete copy.pragma;
  return copy;
}

/** Answers from a stored response, with 304 when the client's validators match (RFC 9110 §13.2.2). */
function answer(
  ctx: ListenerContext,
  req: IncomingMessage,
  res: ServerResponse,
  entry: HttpEntry,
  now: number,
  cacheStatus: string,
  result: RequestResult,
  started: number,
): void {
  const meta = entry.meta;
  const age = ageOf(entry, now);
  if (isNotModified(req.headers, meta.etag, meta.lastModified)) writeNotModified(res, entry, age, cacheStatus);
  else writeStored(res, entry, age, cacheStatus, req.method !== 'HEAD');
  ctx.report(result, started);
}

/** RFC 5861 §3: serve the stale copy now and refresh it once in the background. */
function serveStaleAndRefresh(
  ctx: ListenerContext,
  req: IncomingMessage,
  res: ServerResponse,
  route: HttpRoute,
  url: string,
  base: string,
  entry: HttpEntry,
  now: number,
  started: number,
): void {
  const status = formatCacheStatus({ hit: true, ttlSeconds: ttlOf(entry, now), detail: 'STALE-WHILE-REVALIDATE' });
  answer(ctx, req, res, entry, now, status, 'stale', started);
  if (ctx.store.flightOf(entry.key) !== undefined) return;
  const ex: Exchange = { req, res, route, url, base, key: entry.key, policyHeaders: policyHeaders(req.headers, route), started, fwd: 'stale' };
  const context = { protocol: 'http', listener: ctx.name };
  ctx.store.fill(entry.key, [], () => fetchForStore(ctx, ex, undefined, entry), { context, space: HTTP_SPACE }).catch((err: unknown) => {
    ctx.log.debug('background refresh failed', { err: errorText(err) });
  });
}

/** Goes upstream for `ex`: one fill shared by concurrent callers of the key, or alone. */
async function fetchThrough(ctx: ListenerContext, ex: Exchange, stale: HttpEntry | undefined, alone: boolean): Promise<void> {
  const loader = () => fetchForStore(ctx, ex, ex.res, stale);
  try {
    const outcome = alone
      ? await ctx.store.fillAlone(ex.key, [], loader, HTTP_SPACE)
      : await ctx.store.fill(ex.key, [], loader, {
          timeoutMs: ctx.config.connectTimeout + ctx.config.headersTimeout,
          maxWaiters: MAX_WAITERS,
          space: HTTP_SPACE,
          context: { protocol: 'http', listener: ctx.name },
        });
    if (outcome.leader) return;
    const entry = outcome.entry;
    // Not shareable, or a variant of another request: this caller asks for itself.
    if (entry === null || !fits(entry, ex)) return await fetchThrough(ctx, ex, stale, true);
    const now = ctx.clock.now();
    const status: CacheStatus = { fwd: ex.fwd, collapsed: true, stored: outcome.stored, ttlSeconds: ttlOf(entry, now) };
    answer(ctx, ex.req, ex.res, entry, now, formatCacheStatus(status), 'miss', ex.started);
  } catch (err) {
    failed(ctx, ex, err, stale, alone);
  }
}

function fits(entry: HttpEntry, ex: Exchange): boolean {
  if (ex.req.headers.authorization !== undefined && !entry.meta.authorizedReuse) return false;
  return variantKey(ex.base, entry.meta.vary, ex.req.headers) === entry.key;
}

function failed(ctx: ListenerContext, ex: Exchange, err: unknown, stale: HttpEntry | undefined, alone: boolean): void {
  const { res } = ex;
  const clientWaits = !res.headersSent && !res.destroyed;
  // A waiter whose fill timed out, or whose leader's client left: it asks for itself.
  if (clientWaits && !alone && (isFillTimeout(err) || isAbort(err))) {
    void fetchThrough(ctx, ex, stale, true);
    return;
  }
  ctx.log.debug('upstream request failed', { url: ex.url, err: errorText(err) });
  if (!clientWaits) {
    res.destroy();
    ctx.report('error', ex.started);
    return;
  }
  const now = ctx.clock.now();
  const upstreamStatus = err instanceof UpstreamStatusError ? err.status : undefined;
  if (stale !== undefined && now < stale.meta.sieUntil) {
    const status = formatCacheStatus({ fwd: 'stale', ...(upstreamStatus !== undefined && { fwdStatus: upstreamStatus }), ttlSeconds: ttlOf(stale, now), detail: 'STALE-IF-ERROR' });
    answer(ctx, ex.req, res, stale, now, status, 'stale', ex.started);
    return;
  }
  const failure: GatewayFailure =
    upstreamStatus !== undefined ? { status: 502, detail: 'UPSTREAM-ERROR', message: `the upstream answered ${upstreamStatus}` } : classifyUpstreamError(err);
  writeGatewayError(res, failure, ex.fwd, ex.req.method !== 'HEAD');
  ctx.report('error', ex.started);
}

function isFillTimeout(err: unknown): boolean {
  return isSidecacheError(err) && err.code === 'SC_ERR_FILL_TIMEOUT';
}

function isAbort(err: unknown): boolean {
  const e = err as { name?: string; code?: string } | null;
  return e?.name === 'AbortError' || e?.code === 'UND_ERR_ABORTED';
}

export function errorText(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
