/**
 * The read-through decision for a GET or HEAD: answer from the store (fresh, or stale while one
 * refresh runs), or go upstream, leading the key's one fill or waiting on it. The answers
 * themselves are written by `respond.ts`; the upstream is asked by `fill.ts`.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { EntryInput, FillOutcome } from '../../cache/types.js';
import { isSidecacheError } from '../../errors.js';
import { channels, type InvalidationEvent } from '../../events.js';
import type { Millis } from '../../units.js';
import type { ForwardReason } from './cache-status.js';
import type { Exchange, FillRequest, ListenerContext } from './context.js';
import { ageOf, HTTP_SPACE, type HttpEntry, type HttpMeta, ttlOf } from './entry.js';
import type { BodyReader, SharedBody } from './body-tee.js';
import { type Fetched, fetchForStore, type Share, storeOnly } from './fill.js';
import { errorText } from './gateway-error.js';
import { baseKey, variantKey } from './key.js';
import { readRequestDirectives, type RequestDirectives, requestAllowsStored } from './policy.js';
import {
  answerCollapsed,
  answerFailure,
  answerFetched,
  answerHit,
  answerOnlyIfCached,
  answerRange,
  answerShared,
  answerStaleWhileRevalidate,
  awaitsHead,
  interimTo,
} from './respond.js';
import type { HttpRoute } from './rules.js';
import { forwardMethod } from './unsafe.js';

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
  const hitForMiss = ctx.isHitForMiss(key);
  if (hitForMiss && entry === undefined) fwd = 'miss';
  // Requests with credentials neither wait on others nor make others wait on them.
  const alone = hitForMiss || req.headers.authorization !== undefined;
  const ex: Exchange = { req, res, route, url, base, key, policyHeaders: policyHeaders(req.headers, route), started, fwd };
  void fetchThrough(ctx, ex, fwd === 'stale' ? entry : undefined, alone);
}

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

function requestDirectives(headers: IncomingHttpHeaders, route: HttpRoute): RequestDirectives | undefined {
  if (route.ignoreRequestCacheControl) return undefined;
  if (headers['cache-control'] === undefined && headers.pragma === undefined) return undefined;
  return readRequestDirectives(headers);
}

function allowsStored(entry: HttpEntry, directives: RequestDirectives | undefined, now: Millis): boolean {
  if (directives === undefined || (entry.meta.noStale && now >= entry.freshUntil)) return now < entry.freshUntil;
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

/** RFC 5861 §3: refreshes a stale entry for the store alone (the caller checked that no fill for it runs). */
function refreshInBackground(ctx: ListenerContext, fr: FillRequest, stale: HttpEntry): void {
  const context = { protocol: 'http', listener: ctx.name };
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

/**
 * This caller's part in the key's fill: the leader, with what it fetched; a waiter streaming the
 * body the fill is still reading; or a waiter, with the outcome.
 */
type Turn =
  | { shared: undefined; fetched: Fetched; filled: Promise<unknown> }
  | { shared: Share; reader: BodyReader; fetched?: undefined }
  | { shared: undefined; fetched: undefined; outcome: FillOutcome<HttpMeta> };

/** Per store, the responses fills in flight are reading, by the key they were asked for. */
const sharesByStore = new WeakMap<object, Map<string, Promise<Share | undefined>>>();
/** Whether `closeShares` hears invalidations (subscribed once per process, on first use). */
let listening = false;

function sharesOf(ctx: ListenerContext): Map<string, Promise<Share | undefined>> {
  let shares = sharesByStore.get(ctx.store);
  if (shares === undefined) {
    if (!listening) channels.invalidation.subscribe(closeShares);
    listening = true;
    sharesByStore.set(ctx.store, (shares = new Map()));
  }
  return shares;
}

/**
 * Fill race (docs/architecture.md): a response a fill is reading may predate an invalidation,
 * and then must not reach a request that joins later. Any invalidation of a store ends the
 * streaming of every fill in flight there: later waiters wait for the outcome, which the store's
 * guard refuses, and fetch anew.
 */
function closeShares(message: unknown): void {
  sharesByStore.get((message as InvalidationEvent).store)?.clear();
}

/**
 * A waiter may stream the leader's response before the fill completes when it would be answered
 * from the stored entry anyway: same variant, no credentials, no validators of its own (a 304
 * is then answered from the entry once stored).
 */
function canStream(share: Share, ex: Exchange): boolean {
  const h = ex.req.headers;
  if (h.range !== undefined || h.authorization !== undefined || h['if-none-match'] !== undefined || h['if-modified-since'] !== undefined) return false;
  return variantKey(ex.base, share.vary, h) === share.key;
}

/**
 * Joins the key's fill (or runs one alone). The leader learns so when its upstream's head arrives,
 * before the fill is done: it answers while the body streams, and the store takes the body after.
 */
async function join(ctx: ListenerContext, ex: Exchange, stale: HttpEntry | undefined, alone: boolean): Promise<Turn> {
  let lead: (fetched: Promise<Fetched>) => void = () => {};
  const leading = new Promise<Fetched>((resolve) => (lead = resolve));
  const shares = sharesOf(ctx);
  const loader = (): Promise<EntryInput<HttpMeta> | null> => {
    const fetched = fetchForStore(ctx, ex, stale, abortWhenAlone(ctx, ex), interimTo(ex.res, ctx));
    lead(fetched);
    void fetched.then(
      (f) => f.kind === 'relayed' && abandonWhenAlone(ctx, ex, f.body, f.reader),
      () => {},
    );
    if (!alone) {
      const share = fetched.then(
        (f) => (f.kind === 'relayed' ? f.share : undefined),
        () => undefined,
      );
      shares.set(ex.key, share);
      const forget = (): void => {
        if (shares.get(ex.key) === share) shares.delete(ex.key);
      };
      return fetched.then((f) => f.input).finally(forget);
    }
    return fetched.then((f) => f.input);
  };
  // The fill timeout bounds a waiter's wait for another's head. A leader is bounded by its own
  // upstream timeouts instead: its fill settles only once the body is in, and a body that keeps
  // arriving (bodyTimeout is between chunks) must not be cut.
  const leads = ctx.store.flightOf(ex.key) === undefined;
  const filled = alone
    ? ctx.store.fillAlone(ex.key, [], loader, HTTP_SPACE)
    : ctx.store.fill(ex.key, [], loader, {
        ...(!leads && { timeoutMs: ctx.config.connectTimeout + ctx.config.headersTimeout }),
        maxWaiters: MAX_WAITERS,
        space: HTTP_SPACE,
        context: { protocol: 'http', listener: ctx.name },
      });
  // A waiter may stream the response the fill is reading rather than wait for the stored entry.
  const pending = leads || alone ? undefined : shares.get(ex.key);
  // One per call, never settled, collected with it (a shared one would keep every race's reaction).
  const never = new Promise<never>(() => {});
  const streamable = pending === undefined ? never : pending.then((share) => (share !== undefined && canStream(share, ex) ? share : never));
  try {
    const first = await Promise.race([leading, filled, streamable]);
    if ('vary' in first) {
      // Still offered: no invalidation since (`closeShares`).
      const reader = first.body.shareable && shares.get(ex.key) === pending ? first.body.reader() : undefined;
      if (reader !== undefined) {
        filled.catch(() => {
          // This waiter streams the fill's body: the wait for its outcome (or its timeout) no longer matters.
        });
        return { shared: first, reader };
      }
      // The body was read to its end meanwhile: the stored entry answers.
      return { shared: undefined, fetched: undefined, outcome: await filled };
    }
    if ('kind' in first) return { shared: undefined, fetched: first, filled };
    // A leader's outcome can only follow its head, which is then at hand.
    if (first.leader) return { shared: undefined, fetched: await leading, filled };
    return { shared: undefined, fetched: undefined, outcome: first };
  } catch (err) {
    // A leader that stopped waiting before its head arrived: the store alone reads what comes.
    leading.then(storeOnly, () => {});
    throw err;
  }
}

/**
 * A leader's upstream request ends when its client leaves before the head, unless other callers
 * wait on it. Once the head is in, the body decides (`body-tee.ts`): a body being stored is read
 * on for the store, one nobody reads any more ends.
 */
function abortWhenAlone(ctx: ListenerContext, ex: Exchange): AbortSignal {
  const controller = new AbortController();
  ex.res.once('close', () => {
    if (!ex.res.headersSent && (ctx.store.flightOf(ex.key)?.waiters ?? 0) === 0) controller.abort();
  });
  return controller.signal;
}

function fits(entry: HttpEntry, ex: Exchange): boolean {
  if (ex.req.headers.authorization !== undefined && !entry.meta.authorizedReuse) return false;
  return variantKey(ex.base, entry.meta.vary, ex.req.headers) === entry.key;
}

/** After the head: a body nobody reads or waits for is not read on when the leader's client leaves. */
function abandonWhenAlone(ctx: ListenerContext, ex: Exchange, body: SharedBody, reader: BodyReader): void {
  const check = (): void => {
    if (ex.res.writableFinished) return;
    reader.release();
    if ((ctx.store.flightOf(ex.key)?.waiters ?? 0) === 0) body.abandonIfUnread();
  };
  if (ex.res.destroyed) check();
  else ex.res.once('close', check);
}

function isFillTimeout(err: unknown): boolean {
  return isSidecacheError(err) && err.code === 'SC_ERR_FILL_TIMEOUT';
}

function isAbort(err: unknown): boolean {
  const e = err as { name?: string; code?: string } | null;
  return e?.name === 'AbortError' || e?.code === 'UND_ERR_ABORTED';
}
