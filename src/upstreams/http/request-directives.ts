/**
 * What a client's request asks of a stored response: its Cache-Control directives read against
 * the entry's age and freshness, and whether its conditionals (If-None-Match, If-Modified-Since)
 * make the answer a 304.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { directivesOf } from './cache-control.js';

/**
 * Request directives (RFC 9111 §5.2.1). The library evaluates them against its own idea of
 * freshness, which does not know route `ttl` overrides, so they are read here against ours.
 */
export interface RequestDirectives {
  noCache: boolean;
  noStore: boolean;
  maxAgeSeconds: number | undefined;
  minFreshSeconds: number | undefined;
  /** `true` for a bare max-stale (any staleness), or the seconds allowed. */
  maxStale: number | true | undefined;
  /** RFC 9111 §5.2.1.7: answer from the store or with 504, never upstream. */
  onlyIfCached: boolean;
}

/** RFC 9111 §1.2.2 delta-seconds: digits only. */
function deltaSeconds(value: string | true | undefined): number | undefined {
  return typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : undefined;
}

export function readRequestDirectives(headers: IncomingHttpHeaders): RequestDirectives {
  const d = directivesOf(headers);
  return {
    noCache: d.has('no-cache'),
    noStore: d.has('no-store'),
    maxAgeSeconds: deltaSeconds(d.get('max-age')),
    minFreshSeconds: deltaSeconds(d.get('min-fresh')),
    maxStale: d.get('max-stale') === true ? true : deltaSeconds(d.get('max-stale')),
    onlyIfCached: d.has('only-if-cached'),
  };
}

/**
 * Whether the client's directives let a stored response answer, given its age and remaining
 * freshness in seconds (negative when stale). RFC 9111 §5.2.1.1, .2, .3, .4.
 */
export function requestAllowsStored(d: RequestDirectives, ageSeconds: number, freshSeconds: number): boolean {
  if (d.noCache) return false;
  if (d.maxAgeSeconds !== undefined && ageSeconds > d.maxAgeSeconds) return false;
  if (d.minFreshSeconds !== undefined && freshSeconds < d.minFreshSeconds) return false;
  if (freshSeconds > 0) return true;
  return d.maxStale === true || (d.maxStale !== undefined && -freshSeconds <= d.maxStale);
}

/**
 * RFC 9110 §13.1.2 and §13.1.3: whether a client's conditional GET/HEAD is satisfied by the stored
 * validators, so it gets 304. If-None-Match uses the weak comparison and takes precedence. Only a
 * 2xx answer can be "not modified": for any other status the conditions are ignored (§13.2.1).
 */
export function isNotModified(request: IncomingHttpHeaders, status: number, etag: string | undefined, lastModified: string | undefined): boolean {
  if (status < 200 || status > 299) return false;
  const inm = request['if-none-match'];
  if (inm !== undefined) {
    if (etag === undefined) return false;
    if (inm.trim() === '*') return true;
    const opaque = weak(etag);
    return inm.split(',').some((tag) => weak(tag.trim()) === opaque);
  }
  const ims = request['if-modified-since'];
  if (ims === undefined || lastModified === undefined) return false;
  const since = Date.parse(ims);
  const modified = Date.parse(lastModified);
  return Number.isFinite(since) && Number.isFinite(modified) && modified <= since;
}

function weak(tag: string): string {
  return tag.startsWith('W/') ? tag.slice(2) : tag;
}
