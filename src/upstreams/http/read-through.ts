/**
 * The read-through decision for a GET or HEAD: answer from the store (fresh, or stale while one
 * refresh runs), or go upstream, leading the key's one fill or waiting on it. The answers
 * themselves are written by `respond.ts`; the upstream is asked by `fill.ts`, through the key's
 * one fill (`fill-join.ts`). Range requests: `read-through-range.ts`.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Millis } from '../../units.js';
import type { ForwardReason } from './cache-status.js';
import type { Exchange, FillRequest, ListenerContext } from './context.js';
import { ageOf, HTTP_SPACE, type HttpEntry } from './entry.js';
import { fits, isAbort, isFillTimeout, join } from './fill-join.js';
import { fetchForStore, storeOnly } from './fill.js';
import { errorText } from './gateway-error.js';
import { baseKey, variantKey } from './key.js';
import { readRequestDirectives, type RequestDirectives, requestAllowsStored } from './request-directives.js';
import {
  answerCollapsed,
  answerFailure,
  answerFetched,
  answerHit,
  answerOnlyIfCached,
  answerShared,
  answerStaleWhileRevalidate,
  awaitsHead,
} from './respond.js';
import type { HttpRoute } from './rules.js';
import { forwardMethod } from './unsafe.js';

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
export function readThrough(ctx: ReadThroughContext, req: IncomingMessage, res: ServerResponse, route: HttpRoute, url: string, started: Millis): void {
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
      answerHit(ctx, req, res, entry, now, started);
      return;
    }
    if (reusable && now >= entry.freshUntil && now < entry.meta.swrUntil && directives?.noCache !== true) {
      answerStaleWhileRevalidate(ctx, req, res, entry, now, started);
      if (ctx.store.flightOf(entry.key) === undefined)
        refreshInBackground(ctx, { req, route, url, base, key: entry.key, policyHeaders: policyHeaders(req.headers, route) }, entry);
      return;
    }
    fwd = !reusable || now < entry.freshUntil ? 'request' : 'stale';
  }
  if (directives?.onlyIfCached === true) return answerOnlyIfCached(ctx, req, res, fwd, started);
  // A bus is down (`whileDown`): nothing from the cache (bypass), or a withheld entry is asked anew.
  const degraded = ctx.store.degradation;
  if (degraded !== undefined && ctx.store.bypassing) return void forwardMethod(ctx, req, res, started, 'bypass', degraded.reason);
  const hitForMiss = ctx.isHitForMiss(key);
  if (hitForMiss && entry === undefined) fwd = 'miss';
  // Requests with credentials neither wait on others nor make others wait on them.
  const alone = hitForMiss || req.headers.authorization !== undefined;
  const ex: Exchange = { req, res, route, url, base, key, policyHeaders: policyHeaders(req.headers, route), started, fwd };
  if (degraded !== undefined && entry === undefined && ctx.store.withholds(key)) ex.detail = degraded.reason;
  void fetchThrough(ctx, ex, fwd === 'stale' ? entry : undefined, alone);
}

export function requestDirectives(headers: IncomingHttpHeaders, route: HttpRoute): RequestDirectives | undefined {
  if (route.ignoreRequestCacheControl) return undefined;
  if (headers['cache-control'] === undefined && headers.pragma === undefined) return undefined;
  return readRequestDirectives(headers);
}

export function allowsStored(entry: HttpEntry, directives: RequestDirectives | undefined, now: Millis): boolean {
  if (directives === undefined || (entry.meta.noStale && now >= entry.freshUntil)) return now < entry.freshUntil;
  return requestAllowsStored(directives, ageOf(entry, now), (entry.freshUntil - now) / 1000);
}

/** With `ignoreRequestCacheControl`, the client's directives do not reach the policy either. */
export function policyHeaders(headers: IncomingHttpHeaders, route: HttpRoute): IncomingHttpHeaders {
  if (!route.ignoreRequestCacheControl || (headers['cache-control'] === undefined && headers.pragma === undefined)) return headers;
  // A copy without the two (not a spread and `delete`, which leaves V8 a slower dictionary object).
  const copy: IncomingHttpHeaders = {};
  for (const name in headers) if (name !== 'cache-control' && name !== 'pragma') copy[name] = headers[name];
  return copy;
}

/** RFC 5861 §3: refreshes a stale entry for the store alone (the caller checked that no fill for it runs). */
function refreshInBackground(ctx: ListenerContext, fr: FillRequest, stale: HttpEntry): void {
  const context = { protocol: 'http', listener: ctx.listener };
  const loader = () => fetchForStore(ctx, fr, stale, undefined).then(storeOnly);
  ctx.store.fill(fr.key, [], loader, { context, space: HTTP_SPACE }).catch((err: unknown) => {
    ctx.log.debug('background refresh failed', { err: errorText(err) });
  });
}

/** Goes upstream for `ex`: one fill shared by concurrent callers of the key, or alone. */
async function fetchThrough(ctx: ListenerContext, ex: Exchange, stale: HttpEntry | undefined, alone: boolean): Promise<void> {
  try {
    const turn = await join(ctx, ex, stale, alone);
    if (turn.shared !== undefined) return await answerShared(ctx, ex, turn.shared, turn.reader);
    if (turn.fetched !== undefined) {
      // The leader's exchange ends when its answer and its fill are both done; the first error is handled below.
      await Promise.all([answerFetched(ctx, ex, turn.fetched), turn.filled]);
      return;
    }
    const entry = turn.outcome.entry;
    // Not shareable, or a variant of another request: this caller asks for itself.
    if (entry === null || !fits(entry, ex)) return await fetchThrough(ctx, ex, stale, true);
    answerCollapsed(ctx, ex, entry, turn.outcome.stored);
  } catch (err) {
    // A waiter whose fill timed out, or whose leader's client left: it asks for itself.
    if (!alone && awaitsHead(ex.res) && (isFillTimeout(err) || isAbort(err))) return void fetchThrough(ctx, ex, stale, true);
    answerFailure(ctx, ex, err, stale);
  }
}
