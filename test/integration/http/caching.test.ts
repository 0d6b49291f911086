import { describe, expect, it } from 'vitest';
import { request } from '../../helpers/client.js';
import { CLOCK_START, counting, useHttpSetup } from '../../helpers/http-setup.js';

// Time moves only by clock.advance(): sidecache and the origin's Date header share the clock.
const setup = useHttpSetup({ manualClock: true });

describe('http read-through: storing and answering', () => {
  it('answers a MISS, then a HIT from memory; Age grows', async () => {
    const { origin, base, clock } = await setup((_req, res, n) => {
      res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain' });
      res.end(`call ${n}`);
    });
    const first = await fetch(`${base}/a?x=1`);
    expect(first.headers.get('cache-status')).toBe('sidecache; fwd=uri-miss; ttl=60; stored');
    expect(await first.text()).toBe('call 1');
    // The origin dates its answers by the same clock.
    expect(first.headers.get('date')).toBe(new Date(CLOCK_START).toUTCString());
    const second = await fetch(`${base}/a?x=1`);
    expect(await second.text()).toBe('call 1');
    expect(second.headers.get('cache-status')).toBe('sidecache; hit; ttl=60');
    expect(second.headers.get('age')).toBe('0');
    expect(second.headers.get('content-type')).toBe('text/plain');
    expect(second.headers.get('via')).toBe('1.1 sidecache');
    expect(origin.calls('/a?x=1')).toBe(1);
    clock.advance(1100);
    const later = await fetch(`${base}/a?x=1`);
    expect(later.headers.get('age')).toBe('1');
    expect(later.headers.get('cache-status')).toBe('sidecache; hit; ttl=58');
    // The query is part of the key, exactly as sent.
    expect(await (await fetch(`${base}/a?x=2`)).text()).toBe('call 1');
    expect(origin.calls('/a?x=2')).toBe(1);
  });

  it('forwards method, path and query exactly, drops hop-by-hop fields and adds Via / X-Forwarded-*', async () => {
    const { origin, base } = await setup((_req, res) => res.end('ok'));
    await request(`${base}/p/%7Ex?a=1&a=2&b`, {
      headers: { 'x-custom': 'v', 'x-forwarded-for': '10.0.0.1', connection: 'keep-alive, x-drop', 'x-drop': 'secret' },
    });
    const seen = origin.seen[0]!;
    // The normal form of the target (paths.test.ts): `%7E` is the unreserved `~`.
    expect(seen.url).toBe('/p/~x?a=1&a=2&b');
    expect(seen.headers['x-custom']).toBe('v');
    expect(seen.headers['x-drop']).toBeUndefined();
    expect(seen.headers.host).toBe(`127.0.0.1:${origin.port}`);
    expect(seen.headers.via).toBe('1.1 sidecache');
    expect(seen.headers['x-forwarded-for']).toBe('10.0.0.1, 127.0.0.1');
    expect(seen.headers['x-forwarded-proto']).toBe('http');
    // Without http[].host, no X-Forwarded-Host: the client's Host is not part of the key (poisoning.test.ts).
    expect(seen.headers['x-forwarded-host']).toBeUndefined();
  });

  it('does not store no-store, private or Set-Cookie responses, and says why', async () => {
    const { origin, base } = await setup((req, res, n) => {
      const cc = req.url === '/no-store' ? 'no-store' : req.url === '/private' ? 'private, max-age=60' : 'max-age=60';
      const headers: Record<string, string> = { 'cache-control': cc };
      if (req.url === '/cookie') headers['set-cookie'] = `s=${n}`;
      res.writeHead(200, headers);
      res.end(`call ${n}`);
    });
    for (const [path, detail] of [
      ['/no-store', 'no-store'],
      ['/private', 'private'],
      ['/cookie', 'set-cookie'],
    ] as const) {
      const first = await fetch(`${base}${path}`);
      expect(first.headers.get('cache-status')).toBe(`sidecache; fwd=uri-miss; detail=${detail}`);
      expect(await first.text()).toBe('call 1');
      expect(await (await fetch(`${base}${path}`)).text()).toBe('call 2');
      expect(origin.calls(path)).toBe(2);
    }
  });

  it('stores Set-Cookie responses on a cacheSetCookie route, without the cookie', async () => {
    const { origin, base } = await setup((_req, res, n) => {
      res.writeHead(200, { 'cache-control': 'max-age=60', 'set-cookie': `s=${n}` });
      res.end(`call ${n}`);
    }, '    rules:\n      - { path: "/shared/**", cacheSetCookie: true }\n');
    const first = await fetch(`${base}/shared/x`);
    expect(first.headers.get('set-cookie')).toBe('s=1');
    const hit = await fetch(`${base}/shared/x`);
    expect(hit.headers.get('cache-status')).toMatch(/hit/);
    expect(hit.headers.get('set-cookie')).toBeNull();
    expect(origin.calls('/shared/x')).toBe(1);
  });

  it('follows RFC 9111 §3.5 for Authorization: stored only when the response allows it', async () => {
    const { origin, base } = await setup((req, res, n) => {
      res.writeHead(200, { 'cache-control': req.url === '/shared' ? 's-maxage=60' : 'max-age=60' });
      res.end(`call ${n} ${req.headers.authorization ?? 'anon'}`);
    });
    const auth = { authorization: 'Bearer alice' };
    expect(await (await fetch(`${base}/mine`, { headers: auth })).text()).toBe('call 1 Bearer alice');
    const other = await fetch(`${base}/mine`, { headers: { authorization: 'Bearer bob' } });
    expect(await other.text()).toBe('call 2 Bearer bob');
    expect(origin.calls('/mine')).toBe(2);
    // An anonymous response is stored, but not handed to a request with credentials.
    await fetch(`${base}/mine`);
    expect(await (await fetch(`${base}/mine`)).text()).toBe('call 3 anon');
    expect(await (await fetch(`${base}/mine`, { headers: auth })).text()).toBe('call 4 Bearer alice');
    // s-maxage says a shared cache may reuse it, for anyone.
    expect(await (await fetch(`${base}/shared`, { headers: auth })).text()).toBe('call 1 Bearer alice');
    const reused = await fetch(`${base}/shared`, { headers: { authorization: 'Bearer bob' } });
    expect(reused.headers.get('cache-status')).toMatch(/hit/);
    expect(origin.calls('/shared')).toBe(1);
  });

  it('keeps Vary variants side by side, and never stores Vary: *', async () => {
    const { origin, base } = await setup((req, res, n) => {
      res.writeHead(200, { 'cache-control': 'max-age=60', vary: req.url === '/star' ? '*' : 'Accept-Language' });
      res.end(`${req.headers['accept-language'] ?? 'none'} ${n}`);
    });
    const get = async (lang: string, path = '/v') => (await fetch(`${base}${path}`, { headers: { 'accept-language': lang } })).text();
    expect(await get('en')).toBe('en 1');
    expect(await get('fr')).toBe('fr 2');
    expect(await get('en')).toBe('en 1');
    expect(await get('fr')).toBe('fr 2');
    expect(origin.calls('/v')).toBe(2);
    const vary = await fetch(`${base}/v`, { headers: { 'accept-language': 'de' } });
    expect(vary.headers.get('cache-status')).toBe('sidecache; fwd=vary-miss; ttl=60; stored');
    expect(await get('en', '/star')).toBe('en 1');
    expect(await get('en', '/star')).toBe('en 2');
  });

  it('revalidates a stale entry with its validator; a 304 refreshes the stored headers', async () => {
    const { origin, base, clock } = await setup((req, res, n) => {
      if (req.headers['if-none-match'] === '"v1"') {
        res.writeHead(304, { etag: '"v1"', 'cache-control': 'max-age=60', 'x-version': `refreshed ${n}` });
        return res.end();
      }
      res.writeHead(200, { etag: '"v1"', 'cache-control': 'max-age=1', 'x-version': 'first' });
      res.end('body');
    });
    await fetch(`${base}/r`);
    clock.advance(1100);
    const revalidated = await fetch(`${base}/r`);
    expect(revalidated.status).toBe(200);
    expect(await revalidated.text()).toBe('body');
    expect(revalidated.headers.get('x-version')).toBe('refreshed 2');
    expect(revalidated.headers.get('cache-status')).toBe('sidecache; fwd=stale; fwd-status=304; ttl=60; stored');
    expect(origin.seen[1]!.headers['if-none-match']).toBe('"v1"');
    const hit = await fetch(`${base}/r`);
    expect(hit.headers.get('x-version')).toBe('refreshed 2');
    expect(hit.headers.get('cache-control')).toBe('max-age=60');
    expect(hit.headers.get('cache-status')).toMatch(/^sidecache; hit/);
    expect(origin.calls('/r')).toBe(2);
  });

  it("answers a client's matching If-None-Match / If-Modified-Since with 304 from a fresh entry", async () => {
    let modified = '';
    const { origin, base, clock } = await setup((_req, res) => {
      res.writeHead(200, { etag: 'W/"abc"', 'last-modified': modified, 'cache-control': 'max-age=60' });
      res.end('payload');
    });
    modified = new Date(clock.now() - 3600_000).toUTCString();
    await fetch(`${base}/c`);
    const inm = await request(`${base}/c`, { headers: { 'if-none-match': '"x", "abc"' } });
    expect(inm.status).toBe(304);
    expect(inm.headers.etag).toBe('W/"abc"');
    expect(inm.headers['cache-status']).toMatch(/hit/);
    const ims = await request(`${base}/c`, { headers: { 'if-modified-since': new Date(clock.now()).toUTCString() } });
    expect(ims.status).toBe(304);
    const changed = await request(`${base}/c`, { headers: { 'if-none-match': '"other"' } });
    expect([changed.status, changed.body]).toEqual([200, 'payload']);
    // The fill itself asked for the whole representation.
    expect(origin.calls('/c')).toBe(1);
    expect(origin.seen[0]!.headers['if-none-match']).toBeUndefined();
  });

  it('answers HEAD from a stored GET, and honours request Cache-Control unless the route ignores it', async () => {
    const { origin, base } = await setup(
      counting(),
      '    ignoreRequestCacheControl: false\n    rules:\n      - { path: "/firm", ignoreRequestCacheControl: true }\n',
    );
    await fetch(`${base}/h`);
    const head = await fetch(`${base}/h`, { method: 'HEAD' });
    expect(head.headers.get('cache-status')).toMatch(/hit/);
    expect(head.headers.get('content-length')).toBe('6');
    expect(await fetch(`${base}/h`, { headers: { 'cache-control': 'no-cache' } }).then((r) => r.text())).toBe('call 2');
    expect(await fetch(`${base}/h`, { headers: { pragma: 'no-cache' } }).then((r) => r.text())).toBe('call 3');
    expect(await fetch(`${base}/h`, { headers: { 'cache-control': 'min-fresh=120' } }).then((r) => r.text())).toBe('call 4');
    await fetch(`${base}/firm`);
    const firm = await fetch(`${base}/firm`, { headers: { 'cache-control': 'no-cache', pragma: 'no-cache' } });
    expect(await firm.text()).toBe('call 1');
    expect(origin.calls('/firm')).toBe(1);
  });

  it('applies rule ttl and tags, defaultTtl for responses that state no freshness, and stores nothing by default', async () => {
    const { origin, server, base } = await setup(
      (_req, res, n) => res.end(`call ${n}`),
      '    defaultTtl: 30s\n    rules:\n      - { path: "/users/*", ttl: 5m, tags: ["users"] }\n      - { path: "/raw/**", ttl: 0s }\n',
    );
    const user = await fetch(`${base}/users/1`);
    expect(user.headers.get('cache-status')).toBe('sidecache; fwd=uri-miss; ttl=300; stored');
    const other = await fetch(`${base}/other`);
    expect(other.headers.get('cache-status')).toBe('sidecache; fwd=uri-miss; ttl=30; stored');
    expect(await fetch(`${base}/raw/x`).then((r) => r.headers.get('cache-status'))).toBe('sidecache; fwd=uri-miss; detail=no-freshness');
    const tags = new Map(server.store.indexedTags());
    expect(tags.get('users')?.size).toBe(1);
    expect(origin.calls('/users/1')).toBe(1);
  });
});
