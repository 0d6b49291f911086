/** The read-through for a GET or HEAD with Range: answered from a stored complete response, fetched whole on a miss. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FillOutcome } from '../../cache/types.js';
import type { Millis } from '../../units.js';
import type { ForwardReason } from './cache-status.js';
import type { Exchange, ListenerContext } from './context.js';
import { HTTP_SPACE, type HttpEntry, type HttpMeta, ttlOf } from './entry.js';
import { fits, isAbort, isFillTimeout, join } from './fill-join.js';
import { baseKey, variantKey } from './key.js';
import { allowsStored, policyHeaders, type ReadThroughContext, requestDirectives } from './read-through.js';
import { answerFailure, answerOnlyIfCached, answerRange, awaitsHead } from './respond.js';
import type { HttpRoute } from './rules.js';
import { forwardMethod } from './unsafe.js';

/**
 * A GET or HEAD with Range (RFC 9110 §14): answered from a stored complete response (`range.ts`);
 * on a miss the whole representation is fetched through the key's fill (without the Range) and
 * the client's range answered from it once it is in. A response that cannot be stored or used,
 * and a request that may not share (credentials, hit-for-miss), go upstream as they are.
 */
export function readThroughRange(ctx: ReadThroughContext, req: IncomingMessage, res: ServerResponse, route: HttpRoute, url: string, started: Millis): void {
  const base = baseKey(ctx.name, url);
  const vary = ctx.varyOf(base);
  const key = vary === undefined ? base : variantKey(base, vary, req.headers);
  const now = ctx.clock.now();
  const entry = ctx.store.get(key, HTTP_SPACE);
  const reusable = entry !== undefined && (req.headers.authorization === undefined || entry.meta.authorizedReuse);
  const directives = requestDirectives(req.headers, route);
  if (reusable && allowsStored(entry, directives, now)) return answerRange(ctx, req, res, entry, { hit: true, ttlSeconds: ttlOf(entry, now) }, 'hit', started);
  // A stale entry within stale-while-revalidate is not served to a Range request: it asks like a miss.
  const fwd: ForwardReason = entry !== undefined ? (!reusable || now < entry.freshUntil ? 'request' : 'stale') : vary === undefined ? 'uri-miss' : 'vary-miss';
  if (directives?.onlyIfCached === true) return answerOnlyIfCached(ctx, req, res, fwd, started);
  const degraded = ctx.store.degradation;
  if (degraded !== undefined && ctx.store.bypassing) return void forwardMethod(ctx, req, res, started, 'bypass', degraded.reason);
  if (ctx.isHitForMiss(key) || req.headers.authorization !== undefined) return void forwardMethod(ctx, req, res, started, 'request');
  const ex: Exchange = { req, res, route, url, base, key, policyHeaders: policyHeaders(req.headers, route), started, fwd };
  void fetchRange(ctx, ex, fwd === 'stale' ? entry : undefined);
}

/** The whole representation through the key's fill, then the client's range from it; else the request as it is. */
async function fetchRange(ctx: ListenerContext, ex: Exchange, stale: HttpEntry | undefined): Promise<void> {
  try {
    const turn = await join(ctx, ex, stale, false);
    // A Range request never streams another's body (`canStream`): it waits for the entry.
    if (turn.shared !== undefined) turn.reader.release();
    // The leader lets go of its part of the body: the fill reads on for the store, or ends.
    if (turn.fetched?.kind === 'relayed') turn.fetched.reader.release();
    const outcome = turn.shared !== undefined ? undefined : turn.fetched !== undefined ? ((await turn.filled) as FillOutcome<HttpMeta>) : turn.outcome;
    const entry = outcome?.entry ?? null;
    // Not stored (too large, not storable, invalidated meanwhile for a waiter), or another variant: as it is.
    if (outcome === undefined || entry === null || !(outcome.leader || outcome.stored) || !fits(entry, ex)) return await forwardRange(ctx, ex);
    const status = { fwd: ex.fwd, collapsed: !outcome.leader, stored: outcome.stored, ttlSeconds: ttlOf(entry, ctx.clock.now()) };
    answerRange(ctx, ex.req, ex.res, entry, status, 'miss', ex.started);
  } catch (err) {
    if (awaitsHead(ex.res) && (isFillTimeout(err) || isAbort(err))) return void forwardRange(ctx, ex);
    answerFailure(ctx, ex, err, stale);
  }
}

/** A Range request the cache cannot answer goes upstream as it is (pass-through, `fwd=request`). */
async function forwardRange(ctx: ListenerContext, ex: Exchange): Promise<void> {
  if (awaitsHead(ex.res)) await forwardMethod(ctx, ex.req, ex.res, ex.started, 'request');
}
