import type { IncomingHttpHeaders } from 'node:http';
import { describe, expect, it } from 'vitest';
import { parseCacheControl } from '../../../../src/upstreams/http/cache-control.js';
import { formatDirectives, initialAgeSeconds, parseAge, parseHttpDate, responseView } from '../../../../src/upstreams/http/freshness.js';
import { cacheDirectivesOf } from '../../../../src/upstreams/http/policy.js';

const NOW = Date.parse('2025-06-01T00:00:00Z');
const AT = Date.parse('1994-11-06T08:49:37Z');

describe('parseHttpDate (RFC 9110 §5.6.7)', () => {
  it('reads the three forms', () => {
    expect(parseHttpDate('Sun, 06 Nov 1994 08:49:37 GMT', NOW)).toBe(AT);
    expect(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT', NOW)).toBe(AT);
    expect(parseHttpDate('Sun Nov  6 08:49:37 1994', NOW)).toBe(AT);
  });

  it('refuses anything else', () => {
    for (const text of [
      '0',
      '-1',
      '1994-11-06T08:49:37Z',
      'Sun, 06 Nov 1994 08:49:37 +0000',
      'Sun, 31 Feb 1994 08:49:37 GMT',
      'Sun, 06 Nov 1994 25:00:00 GMT',
      '',
    ])
      expect(parseHttpDate(text, NOW)).toBeUndefined();
  });

  it('puts an RFC 850 year more than 50 years ahead in the past century', () => {
    expect(new Date(parseHttpDate('Friday, 01-Jan-70 00:00:00 GMT', NOW)!).getUTCFullYear()).toBe(2070);
    expect(new Date(parseHttpDate('Friday, 01-Jan-76 00:00:00 GMT', NOW)!).getUTCFullYear()).toBe(1976);
  });
});

describe('Age and the current age (RFC 9111 §5.1, §4.2.3)', () => {
  it('reads Age as delta-seconds only', () => {
    expect(parseAge('10')).toBe(10);
    expect(parseAge(['3', '7'])).toBe(7);
    for (const bad of ['-1', '1.5', '10abc', '', ' ']) expect(parseAge(bad)).toBeUndefined();
  });

  it('takes the larger of the apparent age and Age plus the round trip', () => {
    const date = new Date(NOW - 3_600_000).toUTCString();
    expect(initialAgeSeconds({ date }, NOW, NOW)).toBe(3600);
    expect(initialAgeSeconds({ date, age: '7200' }, NOW, NOW)).toBe(7200);
    expect(initialAgeSeconds({ age: '5' }, NOW - 2000, NOW)).toBe(7);
    expect(initialAgeSeconds({ date: new Date(NOW + 60_000).toUTCString() }, NOW, NOW)).toBe(0);
    expect(initialAgeSeconds({ date: 'yesterday' }, NOW, NOW)).toBe(0);
  });
});

describe("the library's view of a response", () => {
  it('lower-cases and joins Cache-Control, quoting what needs it', () => {
    expect(formatDirectives(parseCacheControl(['Max-Age=60', 'No-Cache="Set-Cookie, X"']))).toBe('max-age=60, no-cache="Set-Cookie, X"');
  });

  it('turns an invalid Expires into a past date and drops Age and an invalid Date', () => {
    const view = responseView({ expires: '2099-01-01', age: '5', date: 'now' }, new Map(), false, NOW);
    expect(view).toEqual({ expires: 'Thu, 01 Jan 1970 00:00:00 GMT' });
  });

  it('keeps every other field, takes repeated validators once and one Vary list, from a null-prototype object as undici gives', () => {
    // undici reads repeated fields as arrays, single ones (ETag) included; IncomingHttpHeaders types them as strings.
    const headers = Object.assign(
      Object.create(null) as IncomingHttpHeaders,
      {
        'content-type': 'text/plain',
        pragma: 'no-cache',
        etag: ['"a"', '"b"'],
        'last-modified': ['Mon, 01 Jan 2024 00:00:00 GMT', 'Tue, 02 Jan 2024 00:00:00 GMT'],
        vary: ['Accept', 'Accept-Language'],
        'x-custom': ['1', '2'],
      } as Record<string, string | string[]>,
    );
    const view = responseView(headers, parseCacheControl('public, max-age=60'), false, NOW);
    expect(view).toEqual({
      'content-type': 'text/plain',
      etag: '"a"',
      'last-modified': 'Mon, 01 Jan 2024 00:00:00 GMT',
      vary: 'Accept, Accept-Language',
      'x-custom': ['1', '2'],
      'cache-control': 'public, max-age=60',
    });
    expect(responseView({ vary: 'Accept' }, new Map(), false, NOW)).toEqual({ vary: 'Accept' });
    expect(responseView({ expires: 'Thu, 01 Jan 2099 00:00:00 GMT' }, new Map(), true, NOW)).toEqual({});
  });

  it('reads and writes each Cache-Control text anew when they alternate (the last one is remembered, never another)', () => {
    const texts = ['public, max-age=60', 'no-store', 'public, max-age=60', 'private, Max-Age=5', 'no-store'];
    const formatted = texts.map((t) => formatDirectives(parseCacheControl(t)));
    expect(formatted).toEqual(['public, max-age=60', 'no-store', 'public, max-age=60', 'private, max-age=5', 'no-store']);
    expect(parseCacheControl(['no-store'])).toBe(parseCacheControl('no-store'));
    expect([...parseCacheControl('max-age=1')]).toEqual([['max-age', '1']]);
  });
});

describe('targeted fields (RFC 9213 §2)', () => {
  const names = ['sidecache-cache-control', 'cdn-cache-control'];
  it('uses the first valid targeted field, else Cache-Control', () => {
    const headers = { 'cache-control': 'no-store', 'cdn-cache-control': 'max-age=60', 'sidecache-cache-control': 'max-age=5, must-revalidate' };
    expect(Object.fromEntries(cacheDirectivesOf(headers, names).directives)).toEqual({ 'max-age': '5', 'must-revalidate': true });
    expect(cacheDirectivesOf({ ...headers, 'sidecache-cache-control': 'Max-Age=5' }, names).directives.get('max-age')).toBe('60');
    expect(cacheDirectivesOf({ 'cache-control': 'no-store', 'cdn-cache-control': '' }, names)).toEqual({
      directives: new Map([['no-store', true]]),
      targeted: false,
    });
  });

  it('reads Structured Fields booleans', () => {
    expect(Object.fromEntries(cacheDirectivesOf({ 'cdn-cache-control': 'no-store=?0, max-age=9, public=?1' }, names).directives)).toEqual({
      'max-age': '9',
      public: true,
    });
  });
});
