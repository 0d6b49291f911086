/**
 * The loader of HTTP fills: asks the upstream for a request's URL and returns the answer for the
 * requester (the head at once, the body as it arrives) together with what the store keeps once
 * the body is in. It never writes to a client.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { EntryInput } from '../../cache/types.js';
import type { Millis } from '../../units.js';
import type { CacheStatus } from './cache-status.js';
import type { FillRequest, ListenerContext } from './context.js';
import type { InterimResponse } from './forward.js';
import type { DispatchedResponse } from './dispatched-body.js';
import type { AbortSwitch } from './request-abort.js';
import { ageOf, bodyOf, type HttpEntry, type HttpMeta, prepareHeaders } from './entry.js';
import type { BodyReader } from './body-reader.js';
import { SharedBody } from './body-tee.js';
import { clientResponseHeaders, forwardRequestHeaders, readTags } from './headers.js';
import { decide, responseHeaderOptions, targetedFields, withoutOwnTargeted } from './fill-settings.js';
import { urlTag } from '../../cache/tags.js';
import { variantKey } from './key.js';
import { cacheDirectivesOf, freshenHeaders, type StoreDecision, storedPolicy, varyNames, withoutSetCookie } from './policy.js';
import { requestView, responseView } from './freshness.js';

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

/** What Cache-Status says about a fill, beside why it went upstream (the exchange knows that). */
export type FillStatus = Pick<CacheStatus, 'fwdStatus' | 'ttlSeconds' | 'stored' | 'detail'>;

interface FetchedBase {
  readonly status: number;
  readonly cacheStatus: FillStatus;
  readonly upstreamStart: Millis;
  /** What the store keeps, or null when the response must not be shared; settles once the body is in. */
  readonly input: Promise<EntryInput<HttpMeta> | null>;
}

/**
 * A full response from the upstream: `fields` for the client (no Cache-Status yet) and the body as
 * it arrives. The requester reads `reader` at its own pace, to its end or releases it; the fill
 * reads the body for the store at the upstream's pace meanwhile (`body-tee.ts`).
 */
export interface Relayed extends FetchedBase {
  readonly kind: 'relayed';
  readonly fields: string[];
  readonly reader: BodyReader;
  readonly body: SharedBody;
  /** What waiters of the key may stream while the fill runs; undefined when they must wait for the entry. */
  readonly share: Share | undefined;
}

/**
 * A response being stored, which a waiter may stream before the fill completes: only one whose
 * declared length fits the entry limit, so the fill cannot stop storing half-way.
 */
export interface Share {
  /** The key the entry will have (the variant key when the response has Vary). */
  readonly key: string;
  readonly vary: readonly string[];
  readonly status: number;
  /** Fields as stored (no Set-Cookie), without Cache-Status. */
  readonly fields: readonly string[];
  readonly ttlSeconds: number;
  readonly body: SharedBody;
}

/**
 * A 304 to a revalidation (RFC 9111 §4.3.4): the stale entry's body under refreshed fields,
 * prepared as for hits, with the Age and Cache-Status slots at the end.
 */
export interface Refreshed extends FetchedBase {
  readonly kind: 'refreshed';
  readonly fields: string[];
  readonly ageSeconds: number;
  readonly body: Buffer;
}

export type Fetched = Relayed | Refreshed;

/** The Vary names of every entry without Vary: one shared list rather than one per entry. */
const NO_VARY: readonly string[] = Object.freeze([]);

/** The store's part of a response that is not stored (shared: a settled promise may be read by any number). */
const NOTHING_STORED: Promise<EntryInput<HttpMeta> | null> = Promise.resolve(null);

/** Reasons not to store that say nothing about the next response (errors, this client's own request): no hit-for-miss. */
const TRANSIENT = /^(status-5|request-|authorization)/;

/**
 * Asks the upstream for the request's URL. With `stale`, the request is conditional and a 304
 * refreshes the stale entry. `abort` ends the upstream request (its requester left); `onInfo`
 * hears the upstream's interim (1xx) responses, which are never stored.
 */
export async function fetchForStore(
  ctx: ListenerContext,
  fr: FillRequest,
  stale: HttpEntry | undefined,
  abort: AbortSwitch | undefined,
  onInfo?: (info: InterimResponse) => void,
): Promise<Fetched> {
  // A fill asks for the whole representation (`unconditional` leaves Range and If-Range out, with
  // the client's validators): a Range request is answered from it (`range.ts`).
  const headers = forwardRequestHeaders(fr.req, { upstreamHost: ctx.upstream.host, mode: ctx.config.forwardedHeaders, unconditional: true });
  if (stale?.meta.etag !== undefined) headers.push('if-none-match', stale.meta.etag);
  if (stale?.meta.lastModified !== undefined) headers.push('if-modified-since', stale.meta.lastModified);
  const upstreamStart = ctx.clock.now();
  const response = await ctx.upstream.fetch({ method: 'GET', url: fr.url, headers, abort, onInfo });
  if (response.statusCode === 304 && stale !== undefined) {
    await response.body.dump();
    return refreshed(ctx, fr, stale, response.headers, upstreamStart);
  }
  if (response.statusCode >= 500 && stale !== undefined && ctx.clock.now() < stale.meta.sieUntil) {
    await response.body.dump();
    throw new UpstreamStatusError(response.statusCode);
  }
  return relayed(ctx, fr, response, upstreamStart);
}

/** For a fill nobody relays (a background refresh, a requester that stopped waiting): the store's part alone. */
export function storeOnly(fetched: Fetched): Promise<EntryInput<HttpMeta> | null> {
  if (fetched.kind === 'relayed') fetched.reader.release();
  return fetched.input;
}

function relayed(ctx: ListenerContext, fr: FillRequest, response: DispatchedResponse, upstreamStart: Millis): Relayed {
  const decision = decide(ctx, fr, response.statusCode, response.headers, upstreamStart);
  const declared = Number(response.headers['content-length']);
  const tooLarge = Number.isFinite(declared) && declared > ctx.store.maxEntryBytes;
  const store = decision.store && !tooLarge;
  const detail = decision.store ? (tooLarge ? 'too-large' : undefined) : decision.detail;
  if (!store && (detail === undefined || !TRANSIENT.test(detail))) ctx.markHitForMiss(fr.key);

  const headerOptions = responseHeaderOptions(ctx);
  const clientHeaders = withoutOwnTargeted(ctx, response.headers);
  // The fields kept (no Set-Cookie) only when the response is stored; the requester's are the same
  // list unless there are cookies to answer (in their place).
  const storedFields = store ? clientResponseHeaders(clientHeaders, headerOptions.stored) : undefined;
  const fields =
    storedFields !== undefined && clientHeaders['set-cookie'] === undefined
      ? storedFields.slice()
      : clientResponseHeaders(clientHeaders, headerOptions.answered);
  const upstreamAge = single(response.headers.age);
  if (upstreamAge !== undefined) fields.push('age', upstreamAge);
  const ttlSeconds = decision.store ? Math.round(decision.lifetimes.freshMs / 1000) : undefined;
  const cacheStatus: FillStatus = { stored: store, ...(store && { ttlSeconds }), ...(detail !== undefined && { detail }) };

  const body = new SharedBody(response.body, store ? ctx.store.maxEntryBytes : 0, (err) => ctx.upstreamFailed(err));
  const input =
    storedFields === undefined || !decision.store
      ? NOTHING_STORED
      : body.kept.then((captured) => {
          if (captured === undefined) {
            ctx.markHitForMiss(fr.key);
            return null;
          }
          return buildInput(ctx, fr, response.statusCode, storedFields, captured, decision);
        });
  // The leader reads from the first byte: its reader exists before the first chunk can be dropped.
  const reader = body.reader()!;
  const share =
    storedFields !== undefined && decision.store && Number.isFinite(declared)
      ? shareOf(fr, response.statusCode, upstreamAge === undefined ? storedFields : [...storedFields, 'age', upstreamAge], ttlSeconds ?? 0, decision, body)
      : undefined;
  return { kind: 'relayed', status: response.statusCode, fields, cacheStatus, upstreamStart, input, reader, body, share };
}

function shareOf(fr: FillRequest, status: number, fields: string[], ttlSeconds: number, decision: StoreDecision, body: SharedBody): Share {
  const vary = varyNames(decision.responseHeaders.vary);
  const key = vary.length === 0 ? fr.base : variantKey(fr.base, vary, fr.req.headers);
  return { key, vary, status, fields, ttlSeconds, body };
}

/** A 304 to a revalidation: the stale body with the refreshed fields (RFC 9111 §4.3.4). */
function refreshed(ctx: ListenerContext, fr: FillRequest, stale: HttpEntry, notModified: IncomingHttpHeaders, upstreamStart: Millis): Refreshed {
  const meta = stale.meta;
  const { directives, targeted } = cacheDirectivesOf(notModified, targetedFields(ctx));
  const policy = storedPolicy(ctx.Policy, fr.url, fr.policyHeaders, meta.status, meta.responseHeaders, targetedFields(ctx));
  const { modified, matches } = policy.revalidatedPolicy(
    { method: 'GET', url: fr.url, headers: requestView(fr.policyHeaders) },
    { status: 304, headers: responseView(notModified, directives, targeted, ctx.clock.now()) },
  );
  // The 304's cookies are for this requester (RFC 9111 §4.3.4 updates the stored fields with
  // them, §3.1 and our rule keep Set-Cookie out of the store): answered, never kept.
  const cookies: string | string[] | undefined = notModified['set-cookie'];
  const fromUpstream = withoutSetCookie(notModified);
  // A 304 that does not fit the stored response stands on its own fields, as in the library.
  const merged = withoutOwnTargeted(ctx, matches ? freshenHeaders(meta.responseHeaders, fromUpstream) : fromUpstream);
  const decision = modified ? undefined : decide(ctx, fr, meta.status, merged, upstreamStart);
  const body = bodyOf(stale);
  const fields = clientResponseHeaders(merged, responseHeaderOptions(ctx).stored);
  const answer = { kind: 'refreshed', status: meta.status, upstreamStart, body } as const;
  if (decision === undefined || !decision.store) {
    // The 304 does not fit the stored response, or forbids storing it now: answer it once, keep nothing.
    const cacheStatus: FillStatus = { fwdStatus: 304, detail: decision?.store === false ? decision.detail : 'mismatch' };
    const ageSeconds = ageOf(stale, ctx.clock.now());
    return { ...answer, fields: prepareHeaders(withCookies(fields, cookies), body.length).headers, ageSeconds, cacheStatus, input: Promise.resolve(null) };
  }
  const input = buildInput(ctx, fr, meta.status, fields, body, decision, stale.key);
  const cacheStatus: FillStatus = { fwdStatus: 304, stored: true, ttlSeconds: Math.round(input.ttlMs / 1000) };
  // The prepared list is the entry's, shared by every hit: the requester's cookies go in a copy.
  const answered = cookies === undefined ? input.meta.headers : prepareHeaders(withCookies(fields, cookies), body.length).headers;
  return { ...answer, fields: answered, ageSeconds: Math.floor(input.meta.ageBase), cacheStatus, input: Promise.resolve(input) };
}

function withCookies(fields: readonly string[], cookies: string | string[] | undefined): string[] {
  if (cookies === undefined) return [...fields];
  return [...fields, ...(Array.isArray(cookies) ? cookies : [cookies]).flatMap((c) => ['set-cookie', c])];
}

function buildInput(
  ctx: ListenerContext,
  fr: FillRequest,
  status: number,
  fields: readonly string[],
  body: Buffer,
  decision: StoreDecision,
  key?: string,
): EntryInput<HttpMeta> {
  const { lifetimes, responseHeaders } = decision;
  const now = ctx.clock.now();
  const names = varyNames(responseHeaders.vary);
  const vary = names.length === 0 ? NO_VARY : names;
  ctx.learnVary(fr.base, vary);
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
    noStale: lifetimes.noStale,
    vary,
    responseHeaders,
  };
  return {
    key: key ?? (vary.length === 0 ? fr.base : variantKey(fr.base, vary, fr.req.headers)),
    body,
    meta,
    // The prepared lists and the upstream's fields kept for a 304 beside them, counted roughly (as before the
    // policy object left the entry, so that as many entries fit in `cache.maxBytes`).
    metaBytes: prepared.bytes * 2 + 256,
    tags: [...fr.route.tags, ...readTags(responseHeaders[ctx.tagHeader]), urlTag(ctx.name, fr.url)],
    path: fr.url,
    ttlMs: lifetimes.freshMs,
    staleMs: lifetimes.keepMs,
  };
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
