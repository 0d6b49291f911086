/**
 * Every answer of the read-through path, and its failures, written to the client here and nowhere
 * else: hits, stale copies, collapsed waiters, what a fill fetched (streamed as it arrives, or a
 * 304-refreshed entry), stale-if-error and the gateway's own errors.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { whenWritable } from '../../drain.js';
import type { RequestResult } from '../../events.js';
import type { Millis } from '../../units.js';
import { type CacheStatus, type ForwardReason, formatCacheStatus, hitStatus } from './cache-status.js';
import type { Exchange, ListenerContext } from './context.js';
import { ageOf, bodyOf, type HttpEntry, ttlOf } from './entry.js';
import type { BodyReader } from './body-reader.js';
import { type Fetched, type Share, UpstreamStatusError } from './fill.js';
import { classifyUpstreamError, errorText, type GatewayFailure, pathOnly, writeGatewayError } from './gateway-error.js';
import type { InterimResponse } from './forward.js';
import { clientResponseHeaders } from './headers.js';
import { isNotModified } from './request-directives.js';
import { decideRange, partialFields } from './range.js';

/** A fresh stored response. Synchronous: a hit is a lookup and one write. */
export function answerHit(ctx: ListenerContext, req: IncomingMessage, res: ServerResponse, entry: HttpEntry, now: Millis, started: Millis): void {
  answerStored(ctx, req, res, entry, now, hitStatus(ttlOf(entry, now)), 'hit', started);
}

/** RFC 5861 §3: the stale copy, at once, while one refresh runs. */
export function answerStaleWhileRevalidate(
  ctx: ListenerContext,
  req: IncomingMessage,
  res: ServerResponse,
  entry: HttpEntry,
  now: Millis,
  started: Millis,
): void {
  const status = formatCacheStatus({ hit: true, ttlSeconds: ttlOf(entry, now), detail: 'STALE-WHILE-REVALIDATE' });
  answerStored(ctx, req, res, entry, now, status, 'stale', started);
}

/** A waiter's answer: the entry the fill it waited on stored. */
export function answerCollapsed(ctx: ListenerContext, ex: Exchange, entry: HttpEntry, stored: boolean): void {
  const now = ctx.clock.now();
  const status = formatCacheStatus({ fwd: ex.fwd, collapsed: true, stored, ttlSeconds: ttlOf(entry, now) });
  answerStored(ctx, ex.req, ex.res, entry, now, status, 'miss', ex.started);
}

/**
 * The leader's answer: what its fill fetched. A full response goes out as it arrives, head first;
 * it settles once the body has been relayed (or the upstream failed: it throws that error).
 */
export async function answerFetched(ctx: ListenerContext, ex: Exchange, fetched: Fetched): Promise<void> {
  const { req, res } = ex;
  const status = formatCacheStatus({ fwd: ex.fwd, ...(ex.detail !== undefined && { detail: ex.detail }), ...fetched.cacheStatus });
  const withBody = req.method !== 'HEAD';
  if (fetched.kind === 'refreshed') {
    writePrepared(res, fetched.status, fetched.fields, fetched.ageSeconds, status, withBody ? fetched.body : undefined);
    ctx.report('stale', ex.started, ctx.clock.now() - fetched.upstreamStart, res);
    return;
  }
  fetched.fields.push('cache-status', status);
  await relay(res, fetched.status, fetched.fields, fetched.reader, withBody);
  ctx.report('miss', ex.started, ctx.clock.now() - fetched.upstreamStart, res);
}

/**
 * A waiter's answer while the fill it joined is still reading the body: the response as it will
 * be stored, streamed from the fill's buffer at this client's pace.
 */
export async function answerShared(ctx: ListenerContext, ex: Exchange, share: Share, reader: BodyReader): Promise<void> {
  const status = formatCacheStatus({ fwd: ex.fwd, collapsed: true, ttlSeconds: share.ttlSeconds, detail: 'streamed-fill' });
  await relay(ex.res, share.status, [...share.fields, 'cache-status', status], reader, ex.req.method !== 'HEAD');
  ctx.report('miss', ex.started, undefined, ex.res);
}

/**
 * Writes the head, then the body at the client's pace; a HEAD lets go of the body at once (the fill
 * reads on). What has come is written without waiting, and a body that has all come goes out with
 * the head in one `end()`: a small response is relayed without a promise per chunk.
 */
async function relay(res: ServerResponse, status: number, fields: string[], reader: BodyReader, withBody: boolean): Promise<void> {
  try {
    if (!res.destroyed) res.writeHead(status, fields);
    if (!withBody) reader.release();
    let chunk = reader.poll();
    for (;;) {
      if (chunk === undefined) {
        const next = await reader.next();
        chunk = next.done === true ? null : next.value;
      }
      // A client that left reads no more: the shared body goes on without it.
      if (chunk === null || res.destroyed) break;
      const after = reader.poll();
      if (after === null) {
        res.end(chunk);
        return;
      }
      res.write(chunk);
      const writable = whenWritable(res);
      if (writable !== undefined) await writable;
      chunk = after === undefined ? undefined : after;
    }
    if (!res.destroyed) res.end();
  } finally {
    // However this ends, this client lets go: the fill reads on for the store or ends.
    reader.release();
  }
}

/**
 * A Range request answered from a stored complete response (`range.ts`): 206 for one satisfiable
 * range, 416 for an unsatisfiable one, else the full response; a matching validator first makes
 * it a 304 (RFC 9110 §13.2.2). `base` is the Cache-Status without its detail.
 */
export function answerRange(
  ctx: ListenerContext,
  req: IncomingMessage,
  res: ServerResponse,
  entry: HttpEntry,
  base: CacheStatus,
  result: RequestResult,
  started: Millis,
): void {
  const meta = entry.meta;
  const now = ctx.clock.now();
  const age = ageOf(entry, now);
  const body = bodyOf(entry);
  const withBody = req.method !== 'HEAD';
  if (isNotModified(req.headers, meta.status, meta.etag, meta.lastModified)) {
    writePrepared(res, 304, meta.notModified, age, formatCacheStatus(base), undefined);
  } else {
    const answer = decideRange(req.headers, { status: meta.status, length: body.length, etag: meta.etag, lastModified: meta.lastModified });
    if (answer.kind === 'partial') {
      const fields = partialFields(meta.headers, answer.start, answer.end, body.length);
      writePrepared(
        res,
        206,
        fields,
        age,
        formatCacheStatus({ ...base, detail: 'PARTIAL' }),
        withBody ? body.subarray(answer.start, answer.end + 1) : undefined,
      );
    } else if (answer.kind === 'unsatisfiable') {
      const status = formatCacheStatus({ ...base, detail: 'RANGE-NOT-SATISFIABLE' });
      res.writeHead(416, { 'content-range': `bytes */${body.length}`, 'content-length': 0, 'cache-status': status });
      res.end();
    } else {
      writePrepared(res, meta.status, meta.headers, age, formatCacheStatus({ ...base, detail: answer.why }), withBody ? body : undefined);
    }
  }
  ctx.report(result, started, undefined, res);
}

/**
 * The one place a failed exchange is answered. A client that already has the head loses its
 * connection (its body cannot be completed); otherwise a stale copy stands in while
 * stale-if-error allows (RFC 5861 §4), else the gateway answers 502/504 itself.
 */
export function answerFailure(ctx: ListenerContext, ex: Exchange, err: unknown, stale: HttpEntry | undefined): void {
  const { res } = ex;
  // The path only: a query string may carry credentials (`?api_key=…`) and never reaches a log line.
  ctx.log.debug('upstream request failed', { path: pathOnly(ex.url), err: errorText(err) });
  if (!awaitsHead(res)) {
    res.destroy();
    ctx.report('error', ex.started, undefined, res);
    return;
  }
  const now = ctx.clock.now();
  const upstreamStatus = err instanceof UpstreamStatusError ? err.status : undefined;
  if (stale !== undefined && now < stale.meta.sieUntil) {
    const status = formatCacheStatus({
      fwd: 'stale',
      ...(upstreamStatus !== undefined && { fwdStatus: upstreamStatus }),
      ttlSeconds: ttlOf(stale, now),
      detail: 'STALE-IF-ERROR',
    });
    answerStored(ctx, ex.req, res, stale, now, status, 'stale', ex.started);
    return;
  }
  const failure: GatewayFailure =
    upstreamStatus !== undefined ? { status: 502, detail: 'UPSTREAM-ERROR', message: `the upstream answered ${upstreamStatus}` } : classifyUpstreamError(err);
  // RFC 9111 §5.2.2.2: a cache that cannot revalidate a response that forbids serving it stale answers 504.
  if (stale?.meta.noStale === true) failure.status = 504;
  writeGatewayError(res, failure, ex.fwd, ex.req.method !== 'HEAD');
  ctx.report('error', ex.started, undefined, res);
}

/** RFC 9111 §5.2.1.7: `only-if-cached` and no stored response may answer: 504, the upstream is not asked. */
export function answerOnlyIfCached(ctx: ListenerContext, req: IncomingMessage, res: ServerResponse, fwd: ForwardReason, started: Millis): void {
  const failure: GatewayFailure = { status: 504, detail: 'only-if-cached', message: 'only-if-cached: no stored response may answer this request' };
  writeGatewayError(res, failure, fwd, req.method !== 'HEAD');
  ctx.report('error', started, undefined, res);
}

/**
 * Relays the upstream's interim responses to one client that has no head yet (RFC 9110 §15.2):
 * `103 Early Hints` with its fields (Node sends nothing without a Link), `102 Processing`; other
 * 1xx are dropped (Node answers `100 Continue` itself). Never stored, never sent to waiters.
 */
export function interimTo(res: ServerResponse, ctx: ListenerContext): (info: InterimResponse) => void {
  return (info) => {
    if (!awaitsHead(res)) return;
    if (info.statusCode === 102) return void res.writeProcessing();
    if (info.statusCode !== 103) return;
    const fields = clientResponseHeaders(info.headers, { tagHeader: ctx.tagHeader, exposeTags: false, mode: ctx.config.forwardedHeaders, dropSetCookie: true });
    const hints: Record<string, string | string[]> = {};
    for (let i = 0; i < fields.length; i += 2) {
      const name = fields[i]!;
      const prior = hints[name];
      hints[name] = prior === undefined ? fields[i + 1]! : [...(Array.isArray(prior) ? prior : [prior]), fields[i + 1]!];
    }
    try {
      res.writeEarlyHints(hints);
    } catch (err) {
      // A Link value Node refuses to write: the hints are only hints, the final answer follows.
      ctx.log.debug('early hints not relayed', { err: errorText(err) });
    }
  };
}

/** Whether the client is still there and has not been sent a head yet. */
export function awaitsHead(res: ServerResponse): boolean {
  return !res.headersSent && !res.destroyed;
}

/**
 * Writes `body` to `res` as it arrives, waiting whenever the client's buffer is full
 * (backpressure), then ends the response. A client that left is skipped, not waited for: the
 * body is still read to its end.
 */
export async function streamBody(res: ServerResponse, body: AsyncIterable<Buffer>, withBody: boolean): Promise<void> {
  for await (const chunk of body) {
    if (withBody && !res.destroyed) {
      res.write(chunk);
      await whenWritable(res);
    }
  }
  if (!res.destroyed) res.end();
}

/** Answers from a stored response, with 304 when the client's validators match (RFC 9110 §13.2.2). */
function answerStored(
  ctx: ListenerContext,
  req: IncomingMessage,
  res: ServerResponse,
  entry: HttpEntry,
  now: Millis,
  cacheStatus: string,
  result: RequestResult,
  started: Millis,
): void {
  const meta = entry.meta;
  const age = ageOf(entry, now);
  if (isNotModified(req.headers, meta.status, meta.etag, meta.lastModified)) writePrepared(res, 304, meta.notModified, age, cacheStatus, undefined);
  else writePrepared(res, meta.status, meta.headers, age, cacheStatus, req.method !== 'HEAD' ? bodyOf(entry) : undefined);
  ctx.report(result, started, undefined, res);
}

/**
 * Writes a prepared field list with Age and Cache-Status filled into its two trailing slots, then
 * the body in one `end()`. Lists are shared by every hit; writeHead serializes before returning.
 */
function writePrepared(res: ServerResponse, status: number, fields: string[], age: number, cacheStatus: string, body: Buffer | undefined): void {
  const n = fields.length;
  fields[n - 3] = String(age);
  fields[n - 1] = cacheStatus;
  res.writeHead(status, fields);
  res.end(body);
}
