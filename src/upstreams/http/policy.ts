/**
 * What may be stored, for how long, and what a stored response may answer. Storability and
 * freshness come from http-cache-semantics as a shared cache (RFC 9111,
 * https://www.rfc-editor.org/rfc/rfc9111); the operator's route rules and listener defaults are
 * layered on top here, as small named predicates. What the client's request asks of a stored
 * response (its directives and conditionals) is in request-directives.ts.
 */
import CachePolicy from 'http-cache-semantics';
import type { IncomingHttpHeaders } from 'node:http';
import type { Clock } from '../../clock.js';
import type { Millis } from '../../units.js';
import { type Directives, directivesOf, parseCacheControl } from './cache-control.js';
import { initialAgeSeconds, requestView, responseView } from './freshness.js';
import type { HttpRoute } from './rules.js';

/** How long an entry whose freshness ran out is kept for a conditional revalidation. */
export const REVALIDATION_KEEP_MS: Millis = 60_000;

/** A CachePolicy whose notion of "now" is the listener's clock (the library reads Date.now). */
export type PolicyClass = typeof CachePolicy;

export function clockedPolicy(clock: Clock): PolicyClass {
  return class ClockedPolicy extends CachePolicy {
    now(): number {
      return clock.now();
    }
  };
}

export interface ListenerDefaults {
  defaultTtlMs: Millis;
  staleWhileRevalidateMs: Millis;
  staleIfErrorMs: Millis;
}

/** The lifetimes of an entry about to be stored, all relative to the moment it is stored. */
export interface Lifetimes {
  freshMs: Millis;
  /** Serve stale at once and refresh in the background while within this long after freshness. */
  swrMs: Millis;
  /** Serve stale when the upstream fails while within this long after freshness. */
  sieMs: Millis;
  /** How long after freshness the entry is kept at all (stale serving, revalidation). */
  keepMs: Millis;
  /** Age of the response when it arrived, in seconds (RFC 9111 §4.2.3). */
  ageSeconds: number;
  /** May answer requests that carry Authorization (RFC 9111 §3.5). */
  authorizedReuse: boolean;
  /** Never served stale without revalidation, whatever the request allows (RFC 9111 §4.2.4). */
  noStale: boolean;
}

export type StorageDecision =
  | {
      store: true;
      policy: CachePolicy;
      lifetimes: Lifetimes;
      /** The response fields the policy was built from (Set-Cookie removed): what a later 304 updates. */
      responseHeaders: IncomingHttpHeaders;
    }
  | { store: false; detail: string };

/** A decision to store. */
export type StoreDecision = Extract<StorageDecision, { store: true }>;

export interface StorageInput {
  Policy: PolicyClass;
  method: string;
  url: string;
  requestHeaders: IncomingHttpHeaders;
  status: number;
  responseHeaders: IncomingHttpHeaders;
  route: HttpRoute;
  defaults: ListenerDefaults;
  /**
   * Lower-case names of the targeted Cache-Control fields this cache obeys, first one first
   * (RFC 9213 §2.2); none: Cache-Control alone.
   */
  targeted?: readonly string[];
  /** When the request was sent upstream (RFC 9111 §4.2.3 `request_time`); the policy's now by default. */
  requestTime?: Millis;
}

/** Decides whether a response is stored, and for how long. Reasons are Cache-Status `detail` tokens. */
export function decideStorage(input: StorageInput): StorageDecision {
  const { route, responseHeaders } = input;
  if (hasSetCookie(responseHeaders) && !route.cacheSetCookie) return { store: false, detail: 'set-cookie' };
  if (hasVaryStar(responseHeaders)) return { store: false, detail: 'vary-star' };
  const stored = withoutSetCookie(responseHeaders);
  // The clocked policy's now (clockedPolicy): the moment the response is judged.
  const responseTime = (input.Policy.prototype as unknown as { now(): number }).now();
  const { directives: rescc, targeted } = cacheDirectivesOf(responseHeaders, input.targeted ?? []);
  // The library reads the fields as we do: see responseView.
  const policy = new input.Policy(
    { method: input.method, url: input.url, headers: requestView(input.requestHeaders) },
    { status: input.status, headers: responseView(stored, rescc, targeted, responseTime) },
    { shared: true },
  );
  if (!policy.storable()) return { store: false, detail: notStorableDetail(input, rescc, directivesOf(input.requestHeaders)) };
  const ageSeconds = initialAgeSeconds(responseHeaders, input.requestTime ?? responseTime, responseTime);
  const lifetimes = computeLifetimes(policy, rescc, targeted, ageSeconds, input);
  if (lifetimes.freshMs + lifetimes.keepMs <= 0) return { store: false, detail: 'no-freshness' };
  return { store: true, policy, lifetimes, responseHeaders: stored };
}

/**
 * The policy of a stored exchange, rebuilt from what its entry keeps, for a revalidation (RFC 9111
 * §4.3.4, https://www.rfc-editor.org/rfc/rfc9111#section-4.3.4). The library's
 * `revalidatedPolicy` reads only the stored response's status and fields (their validators) and
 * the new exchange, so this policy answers it as the one built when the response was stored:
 * entries need not keep that object (and the request fields it holds) for a rare revalidation.
 */
export function storedPolicy(
  Policy: PolicyClass,
  url: string,
  requestHeaders: IncomingHttpHeaders,
  status: number,
  stored: IncomingHttpHeaders,
  targeted: readonly string[],
): CachePolicy {
  const now = (Policy.prototype as unknown as { now(): number }).now();
  const { directives, targeted: isTargeted } = cacheDirectivesOf(stored, targeted);
  return new Policy(
    { method: 'GET', url, headers: requestView(requestHeaders) },
    { status, headers: responseView(stored, directives, isTargeted, now) },
    { shared: true },
  );
}

/**
 * The directives this cache obeys: those of the first targeted field in `names` that is present
 * and valid (RFC 9213 §2.2, https://www.rfc-editor.org/rfc/rfc9213#section-2.2: Cache-Control
 * and Expires are then ignored), else Cache-Control's.
 */
export function cacheDirectivesOf(headers: IncomingHttpHeaders, names: readonly string[]): { directives: Directives; targeted: boolean } {
  for (const name of names) {
    const value = headers[name];
    const directives = value === undefined ? undefined : parseTargeted(value);
    if (directives !== undefined) return { directives, targeted: true };
  }
  return { directives: directivesOf(headers), targeted: false };
}

/** SF dictionary keys (RFC 8941 §3.2) and the values a directive takes: integer, token, string, boolean. */
const SF_KEY = /^[a-z*][a-z0-9_.*-]*$/;
const SF_VALUE = /^(?:-?\d{1,15}(?:\.\d{1,3})?|[A-Za-z*][!#$%&'*+.^_`|~0-9A-Za-z:/-]*|\?[01])$/;

/**
 * A targeted field is a Structured Fields Dictionary (RFC 9213 §2.1): lower-case keys, no empty
 * members. An empty or invalid field is ignored (undefined), as if absent.
 */
function parseTargeted(value: string | string[]): Directives | undefined {
  const text = Array.isArray(value) ? value.join(',') : value;
  if (text.trim() === '') return undefined;
  const members = text.split(',').map((m) => m.trim());
  for (const member of members) {
    const [key, ...rest] = member.split('=');
    if (!SF_KEY.test(key!)) return undefined;
    const argument = rest.join('=');
    if (rest.length > 0 && !SF_VALUE.test(argument) && !/^"(?:[^"\\]|\\["\\])*"$/.test(argument)) return undefined;
  }
  const parsed = parseCacheControl(text);
  // Boolean false (`?0`) is the directive's absence; `?1` is its presence.
  const out = new Map<string, string | true>();
  for (const [name, argument] of parsed) {
    if (argument === '?0') continue;
    out.set(name, argument === '?1' ? true : argument);
  }
  return out;
}

function computeLifetimes(policy: CachePolicy, rescc: Directives, targeted: boolean, ageSeconds: number, input: StorageInput): Lifetimes {
  const { route, defaults, responseHeaders } = input;
  const stated = Math.max(0, policy.maxAge() - ageSeconds) * 1000;
  const freshMs = route.ttlMs ?? (statesFreshness(rescc, targeted ? {} : responseHeaders) || defaults.defaultTtlMs === 0 ? stated : defaults.defaultTtlMs);
  const noStale = forbidsStale(rescc);
  // An explicit stale-* directive beside s-maxage is the origin's own permission (RFC 5861); the
  // listener's defaults never override a prohibition.
  const explicitStale = !requiresRevalidation(rescc);
  const swrMs = staleWindow(rescc.get('stale-while-revalidate'), explicitStale, noStale ? 0 : defaults.staleWhileRevalidateMs);
  const sieMs = staleWindow(rescc.get('stale-if-error'), explicitStale, noStale ? 0 : defaults.staleIfErrorMs);
  const keepMs = Math.max(swrMs, sieMs, hasValidator(responseHeaders) ? REVALIDATION_KEEP_MS : 0);
  return { freshMs: Math.round(freshMs), swrMs, sieMs, keepMs, ageSeconds, authorizedReuse: allowsAuthorizedReuse(rescc), noStale };
}

function staleWindow(stated: string | true | undefined, allowed: boolean, fallback: Millis): Millis {
  if (!allowed) return 0;
  return seconds(stated) ?? fallback;
}

/** RFC 9111 §4.2.1: explicit freshness (no-cache counts: it states "zero"). */
function statesFreshness(rescc: Directives, headers: IncomingHttpHeaders): boolean {
  return rescc.has('s-maxage') || rescc.has('max-age') || rescc.has('no-cache') || headers.expires !== undefined;
}

/** RFC 9111 §5.2.2.2, §5.2.2.8, §5.2.2.4: a stale copy may not be served without revalidation. */
function requiresRevalidation(rescc: Directives): boolean {
  return rescc.has('must-revalidate') || rescc.has('proxy-revalidate') || rescc.has('no-cache');
}

/**
 * RFC 9111 §4.2.4 (https://www.rfc-editor.org/rfc/rfc9111#section-4.2.4): no stale copy, and no
 * request's max-stale, where no-cache, must-revalidate, proxy-revalidate or s-maxage (which
 * carries proxy-revalidate for a shared cache, §5.2.2.10) forbid it.
 */
function forbidsStale(rescc: Directives): boolean {
  return requiresRevalidation(rescc) || rescc.has('s-maxage');
}

/** RFC 9111 §3.5: a shared cache may reuse a response to an authorized request only if it says so. */
function allowsAuthorizedReuse(rescc: Directives): boolean {
  return rescc.has('public') || rescc.has('s-maxage') || rescc.has('must-revalidate');
}

function notStorableDetail(input: StorageInput, rescc: Directives, reqcc: Directives): string {
  if (reqcc.has('no-store')) return 'request-no-store';
  if (rescc.has('no-store')) return 'no-store';
  if (rescc.has('private')) return 'private';
  if (input.requestHeaders.authorization !== undefined && !allowsAuthorizedReuse(rescc)) return 'authorization';
  return `status-${input.status}`;
}

function hasSetCookie(headers: IncomingHttpHeaders): boolean {
  return headers['set-cookie'] !== undefined && headers['set-cookie'].length > 0;
}

function hasVaryStar(headers: IncomingHttpHeaders): boolean {
  return varyNames(headers.vary).includes('*');
}

function hasValidator(headers: IncomingHttpHeaders): boolean {
  return headers.etag !== undefined || headers['last-modified'] !== undefined;
}

/** The fields without Set-Cookie (the same object when there is none). */
export function withoutSetCookie(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  if (headers['set-cookie'] === undefined) return headers;
  const copy = { ...headers };
  delete copy['set-cookie'];
  return copy;
}

function seconds(value: string | true | undefined): Millis | undefined {
  if (typeof value !== 'string') return undefined;
  const n = Number(value);
  return Number.isFinite(n) && n >= 0 ? n * 1000 : undefined;
}

/** Fields that describe the stored body, which a 304 keeps: a 304 does not change them (http-cache-semantics' list). */
const BODY_FIELDS = new Set(['content-length', 'content-encoding', 'transfer-encoding', 'content-range']);

/**
 * The stored response's fields updated by a 304 that fits it (RFC 9111 §4.3.4,
 * https://www.rfc-editor.org/rfc/rfc9111#section-4.3.4): each field the 304 also carries takes
 * the 304's value, except those describing the body. Fields only the 304 carries are not added
 * (RFC 9111 §3.2 would add them); this is http-cache-semantics' rule, kept so that the fields
 * match the policy the library builds from the same exchange.
 */
export function freshenHeaders(stored: IncomingHttpHeaders, notModified: IncomingHttpHeaders): IncomingHttpHeaders {
  const merged: IncomingHttpHeaders = {};
  for (const name in stored) {
    merged[name] = Object.hasOwn(notModified, name) && !BODY_FIELDS.has(name) ? notModified[name] : stored[name];
  }
  return merged;
}

/** The field names of a Vary header, lower-cased, in order. */
export function varyNames(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  const text = Array.isArray(value) ? value.join(',') : value;
  return text
    .split(',')
    .map((n) => n.trim().toLowerCase())
    .filter((n) => n !== '');
}
