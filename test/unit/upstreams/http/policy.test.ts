import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../src/clock.js';
import { clockedPolicy, decideStorage, REVALIDATION_KEEP_MS, type StorageInput } from '../../../../src/upstreams/http/policy.js';
import { isNotModified, readRequestDirectives, requestAllowsStored } from '../../../../src/upstreams/http/request-directives.js';
import type { HttpRoute } from '../../../../src/upstreams/http/rules.js';

const clock = new ManualClock(Date.parse('2026-11-24T00:00:00Z'));
const route: HttpRoute = { glob: '**', cache: true, ttlMs: undefined, tags: [], cacheSetCookie: false, ignoreRequestCacheControl: false };

function decide(responseHeaders: Record<string, string | string[]>, over: Partial<StorageInput> = {}) {
  return decideStorage({
    Policy: clockedPolicy(clock),
    method: 'GET',
    url: '/x',
    requestHeaders: { host: 'h' },
    status: 200,
    responseHeaders: { date: new Date(clock.now()).toUTCString(), ...responseHeaders },
    route,
    defaults: { defaultTtlMs: 0, staleWhileRevalidateMs: 0, staleIfErrorMs: 0 },
    ...over,
  });
}

const fresh = (d: ReturnType<typeof decide>) => (d.store ? d.lifetimes.freshMs : `not stored: ${d.detail}`);

describe('decideStorage (shared cache, RFC 9111)', () => {
  it('prefers s-maxage over max-age over Expires, and subtracts the upstream Age', () => {
    expect(fresh(decide({ 'cache-control': 's-maxage=10, max-age=100' }))).toBe(10_000);
    expect(fresh(decide({ 'cache-control': 'max-age=100', age: '30' }))).toBe(70_000);
    expect(fresh(decide({ expires: new Date(clock.now() + 20_000).toUTCString() }))).toBe(20_000);
  });

  it('uses heuristic freshness from Last-Modified (10%) when nothing is stated and no defaultTtl is set', () => {
    const lastModified = new Date(clock.now() - 1000_000).toUTCString();
    expect(fresh(decide({ 'last-modified': lastModified }))).toBe(100_000);
    const withDefault = decide({ 'last-modified': lastModified }, { defaults: { defaultTtlMs: 5000, staleWhileRevalidateMs: 0, staleIfErrorMs: 0 } });
    expect(fresh(withDefault)).toBe(5000);
  });

  it('refuses what a shared cache must not store, naming why', () => {
    expect(fresh(decide({ 'cache-control': 'no-store' }))).toBe('not stored: no-store');
    expect(fresh(decide({ 'cache-control': 'private, max-age=60' }))).toBe('not stored: private');
    expect(fresh(decide({ 'cache-control': 'max-age=60', 'set-cookie': ['a=1'] }))).toBe('not stored: set-cookie');
    expect(fresh(decide({ 'cache-control': 'max-age=60', vary: 'Accept, *' }))).toBe('not stored: vary-star');
    expect(fresh(decide({ 'cache-control': 'max-age=60' }, { requestHeaders: { host: 'h', authorization: 'x' } }))).toBe('not stored: authorization');
    expect(fresh(decide({ 'cache-control': 'max-age=60' }, { requestHeaders: { host: 'h', 'cache-control': 'no-store' } }))).toBe(
      'not stored: request-no-store',
    );
    expect(fresh(decide({ 'cache-control': 'max-age=60' }, { status: 500 }))).toBe('not stored: status-500');
    expect(fresh(decide({}))).toBe('not stored: no-freshness');
  });

  it('lets Authorization responses be stored when public, s-maxage or must-revalidate say so (§3.5)', () => {
    for (const cc of ['public, max-age=60', 's-maxage=60', 'must-revalidate, max-age=60']) {
      const d = decide({ 'cache-control': cc }, { requestHeaders: { host: 'h', authorization: 'x' } });
      expect(d.store && d.lifetimes.authorizedReuse).toBe(true);
    }
  });

  it('keeps no-cache responses with a validator for revalidation, fresh for 0 ms', () => {
    const d = decide({ 'cache-control': 'no-cache', etag: '"a"' }, { defaults: { defaultTtlMs: 60_000, staleWhileRevalidateMs: 0, staleIfErrorMs: 0 } });
    expect(d.store && [d.lifetimes.freshMs, d.lifetimes.keepMs]).toEqual([0, REVALIDATION_KEEP_MS]);
  });

  it('takes stale windows from the response, else the listener; must-revalidate and proxy-revalidate forbid them', () => {
    const defaults = { defaultTtlMs: 0, staleWhileRevalidateMs: 7000, staleIfErrorMs: 9000 };
    const own = decide({ 'cache-control': 'max-age=1, stale-while-revalidate=3, stale-if-error=4' }, { defaults });
    expect(own.store && [own.lifetimes.swrMs, own.lifetimes.sieMs]).toEqual([3000, 4000]);
    const listener = decide({ 'cache-control': 'max-age=1' }, { defaults });
    expect(listener.store && [listener.lifetimes.swrMs, listener.lifetimes.sieMs]).toEqual([7000, 9000]);
    const strict = decide({ 'cache-control': 'max-age=1, must-revalidate' }, { defaults });
    expect(strict.store && [strict.lifetimes.freshMs, strict.lifetimes.swrMs, strict.lifetimes.sieMs]).toEqual([1000, 0, 0]);
    // http-cache-semantics gives proxy-revalidate no freshness in a shared cache: stricter than
    // RFC 9111 §5.2.2.8, never staler. With a validator it is kept for revalidation.
    const proxy = decide({ 'cache-control': 'max-age=1, proxy-revalidate', etag: '"e"' }, { defaults });
    expect(proxy.store && [proxy.lifetimes.freshMs, proxy.lifetimes.swrMs, proxy.lifetimes.sieMs]).toEqual([0, 0, 0]);
  });

  it('a rule ttl overrides freshness but never storability', () => {
    const ruled = { ...route, ttlMs: 300_000 };
    expect(fresh(decide({ 'cache-control': 'max-age=5' }, { route: ruled }))).toBe(300_000);
    expect(fresh(decide({}, { route: ruled }))).toBe(300_000);
    expect(fresh(decide({ 'cache-control': 'no-store' }, { route: ruled }))).toBe('not stored: no-store');
  });
});

describe('request directives and conditionals', () => {
  it('reads Cache-Control, and Pragma only without it (§5.4)', () => {
    expect(readRequestDirectives({ pragma: 'no-cache' }).noCache).toBe(true);
    expect(readRequestDirectives({ pragma: 'no-cache', 'cache-control': 'max-age=5' })).toMatchObject({ noCache: false, maxAgeSeconds: 5 });
    expect(readRequestDirectives({ 'cache-control': 'max-stale' }).maxStale).toBe(true);
    expect(readRequestDirectives({ 'cache-control': 'max-stale="30", min-fresh=2' })).toMatchObject({ maxStale: 30, minFreshSeconds: 2 });
  });

  it('lets a stored response answer per max-age, min-fresh and max-stale', () => {
    const d = (cc: string) => readRequestDirectives({ 'cache-control': cc });
    expect(requestAllowsStored(d('max-age=10'), 5, 50)).toBe(true);
    expect(requestAllowsStored(d('max-age=10'), 11, 50)).toBe(false);
    expect(requestAllowsStored(d('min-fresh=60'), 0, 50)).toBe(false);
    expect(requestAllowsStored(d('max-stale=10'), 0, -5)).toBe(true);
    expect(requestAllowsStored(d('max-stale=10'), 0, -15)).toBe(false);
    expect(requestAllowsStored(d('no-cache'), 0, 50)).toBe(false);
  });

  it('matches If-None-Match weakly, with precedence over If-Modified-Since', () => {
    expect(isNotModified({ 'if-none-match': 'W/"a"' }, 200, '"a"', undefined)).toBe(true);
    expect(isNotModified({ 'if-none-match': '"b", "a"' }, 200, 'W/"a"', undefined)).toBe(true);
    expect(isNotModified({ 'if-none-match': '*' }, 200, '"z"', undefined)).toBe(true);
    expect(isNotModified({ 'if-none-match': '"b"', 'if-modified-since': 'Tue, 24 Nov 2026 00:00:00 GMT' }, 200, '"a"', 'Mon, 23 Nov 2026 00:00:00 GMT')).toBe(
      false,
    );
    expect(isNotModified({ 'if-modified-since': 'Tue, 24 Nov 2026 00:00:00 GMT' }, 200, undefined, 'Mon, 23 Nov 2026 00:00:00 GMT')).toBe(true);
    expect(isNotModified({ 'if-modified-since': 'Sun, 22 Nov 2026 00:00:00 GMT' }, 200, undefined, 'Mon, 23 Nov 2026 00:00:00 GMT')).toBe(false);
    expect(isNotModified({ 'if-modified-since': 'garbage' }, 200, undefined, 'Mon, 23 Nov 2026 00:00:00 GMT')).toBe(false);
    // RFC 9110 §13.2.1: conditions apply to 2xx answers only.
    expect(isNotModified({ 'if-none-match': '"a"' }, 404, '"a"', undefined)).toBe(false);
    expect(isNotModified({ 'if-modified-since': 'Tue, 24 Nov 2026 00:00:00 GMT' }, 301, undefined, 'Mon, 23 Nov 2026 00:00:00 GMT')).toBe(false);
  });
});
