import { describe, expect, it } from 'vitest';
import { formatCacheStatus, hitStatus } from '../../../../src/upstreams/http/cache-status.js';
import { clientResponseHeaders, forwardRequestHeaders, readTags } from '../../../../src/upstreams/http/headers.js';
import { baseKey, variantKey } from '../../../../src/upstreams/http/key.js';
import { compileGlob, RouteTable } from '../../../../src/upstreams/http/rules.js';

describe('route rules', () => {
  it('compiles globs: * within a segment, ** across, the rest literal', () => {
    expect(compileGlob('/users/*').test('/users/42')).toBe(true);
    expect(compileGlob('/users/*').test('/users/42/posts')).toBe(false);
    expect(compileGlob('/static/**').test('/static/a/b.css')).toBe(true);
    expect(compileGlob('/a.b').test('/aXb')).toBe(false);
    expect(compileGlob('/a+(b)').test('/a+(b)')).toBe(true);
  });

  it('takes the first matching rule, and a default route for the rest', () => {
    const table = new RouteTable(
      [
        { path: '/users/*', cache: true, ttl: 1000, tags: ['users'], cacheSetCookie: false, ignoreRequestCacheControl: false },
        { path: '/users/**', cache: false, ttl: undefined, tags: undefined, cacheSetCookie: false, ignoreRequestCacheControl: undefined },
      ],
      { ignoreRequestCacheControl: true },
    );
    expect(table.match('/users/1')).toMatchObject({ ttlMs: 1000, tags: ['users'] });
    expect(table.match('/users/1/x').cache).toBe(false);
    expect(table.match('/other')).toMatchObject({ cache: true, ttlMs: undefined, tags: [], ignoreRequestCacheControl: true });
    // A rule that does not say inherits the listener's ignoreRequestCacheControl.
    expect(table.match('/users/1').ignoreRequestCacheControl).toBe(false);
    expect(table.match('/users/1/x').ignoreRequestCacheControl).toBe(true);
  });
});

describe('route rules: lenient readings', () => {
  it('a path that a lenient reading puts under a cache: false rule gets that rule; other rules are matched as written', () => {
    const table = new RouteTable(
      [
        { path: '/Users/*', cache: true, ttl: 1000, tags: undefined, cacheSetCookie: false, ignoreRequestCacheControl: undefined },
        { path: '/private/**', cache: false, ttl: undefined, tags: undefined, cacheSetCookie: false, ignoreRequestCacheControl: undefined },
      ],
      { ignoreRequestCacheControl: true },
    );
    for (const path of ['/PRIVATE/me', '/private%2Fme', '/private;a=b/me', '/%2570rivate/me']) expect(table.match(path).cache, path).toBe(false);
    expect(table.match('/users/1')).toMatchObject({ cache: true, ttlMs: undefined });
    expect(table.match('/Users/1')).toMatchObject({ cache: true, ttlMs: 1000 });
    expect(table.match('/privatefoo').cache).toBe(true);
  });
});

describe('keys, headers and Cache-Status', () => {
  it('builds variant keys from the nominated fields, normalizing whitespace (RFC 9111 §4.1)', () => {
    const base = baseKey('api', '/x?a=1');
    expect(variantKey(base, [], { accept: 'a' })).toBe(base);
    expect(variantKey(base, ['accept-language'], { 'accept-language': 'en,  fr' })).toBe(
      variantKey(base, ['accept-language'], { 'accept-language': 'en, fr' }),
    );
    expect(variantKey(base, ['accept-language'], { 'accept-language': 'en' })).not.toBe(variantKey(base, ['accept-language'], {}));
  });

  it('drops hop-by-hop fields, Connection-listed fields, Age and the tag header from responses', () => {
    const fields = clientResponseHeaders(
      {
        connection: 'x-hop',
        'x-hop': '1',
        'keep-alive': 'timeout=5',
        'transfer-encoding': 'chunked',
        age: '3',
        'surrogate-key': 'a',
        'set-cookie': ['a=1', 'b=2'],
        via: '1.0 edge',
        'x-keep': 'y',
      },
      { tagHeader: 'surrogate-key', exposeTags: false, mode: 'append', dropSetCookie: false },
    );
    expect(fields).toEqual(['set-cookie', 'a=1', 'set-cookie', 'b=2', 'x-keep', 'y', 'via', '1.0 edge, 1.1 sidecache']);
    expect(readTags(['a b', 'c,d'])).toEqual(['a', 'b', 'c', 'd']);
  });

  it('formats RFC 9211 Cache-Status', () => {
    expect(hitStatus(12)).toBe('sidecache; hit; ttl=12');
    expect(formatCacheStatus({ fwd: 'stale', fwdStatus: 304, ttlSeconds: 60, stored: true })).toBe('sidecache; fwd=stale; fwd-status=304; ttl=60; stored');
    expect(formatCacheStatus({ fwd: 'uri-miss', collapsed: true, detail: 'private' })).toBe('sidecache; fwd=uri-miss; collapsed; detail=private');
  });
});

describe('forwarded request fields', () => {
  const request = (raw: string[]) =>
    ({
      rawHeaders: raw,
      headers: Object.fromEntries(raw.flatMap((v, i) => (i % 2 === 0 ? [[v.toLowerCase(), raw[i + 1]]] : []))),
      socket: { remoteAddress: '10.1.1.1' },
    }) as unknown as import('node:http').IncomingMessage;
  const incoming = [
    'Host',
    'app.local',
    'X-Forwarded-For',
    '1.2.3.4',
    'X-Forwarded-Proto',
    'https',
    'Via',
    '1.0 edge',
    'If-None-Match',
    '"a"',
    'Accept',
    '*/*',
  ];
  const as = (fields: string[]) => Object.fromEntries(fields.flatMap((v, i) => (i % 2 === 0 ? [[v.toLowerCase(), fields[i + 1]]] : [])));

  it('append keeps the chain and adds this hop', () => {
    expect(as(forwardRequestHeaders(request(incoming), { upstreamHost: 'api:3000', mode: 'append', unconditional: false }))).toEqual({
      host: 'api:3000',
      'x-forwarded-for': '1.2.3.4, 10.1.1.1',
      'x-forwarded-proto': 'https',
      via: '1.0 edge, 1.1 sidecache',
      'if-none-match': '"a"',
      accept: '*/*',
    });
  });

  it('replace trusts nothing the client sent; off adds nothing; a fill drops conditionals', () => {
    expect(as(forwardRequestHeaders(request(incoming), { upstreamHost: 'api:3000', mode: 'replace', unconditional: true }))).toEqual({
      host: 'api:3000',
      'x-forwarded-for': '10.1.1.1',
      'x-forwarded-proto': 'http',
      via: '1.0 edge, 1.1 sidecache',
      accept: '*/*',
    });
    expect(as(forwardRequestHeaders(request(incoming), { upstreamHost: 'api:3000', mode: 'off', unconditional: false }))).toEqual({
      host: 'api:3000',
      'x-forwarded-for': '1.2.3.4',
      'x-forwarded-proto': 'https',
      via: '1.0 edge',
      'if-none-match': '"a"',
      accept: '*/*',
    });
  });
});
