import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { counting, useHttpSetup } from '../../helpers/http-setup.js';
import { startOrigin } from '../../helpers/origin.js';
import { httpListenerYaml, startSidecache } from '../../helpers/sidecache.js';
import { ManualClock } from '../../../src/clock.js';
import { CLOCK_START } from '../../helpers/http-setup.js';

// Time moves only by clock.advance(): sidecache and the origin's Date header share the clock.
const setup = useHttpSetup({ manualClock: true });

/** Client request directives are honoured on every path (whatever the listener's default). */
const HONOUR_REQUEST_CC = '    rules:\n      - { path: "/**", ignoreRequestCacheControl: false }\n';

describe('http: invalidation by unsafe methods (RFC 9111 §4.4)', () => {
  // RFC 9110 §9.2.1: only GET, HEAD, OPTIONS and TRACE are safe; a success to any other method invalidates.
  for (const method of ['MKCOL', 'PROPPATCH', 'MOVE', 'LOCK', 'UNLOCK', 'LINK', 'UNLINK', 'REPORT', 'SEARCH']) {
    it(`${method} invalidates its target`, async () => {
      const { origin, base } = await setup((req, res, n) => {
        if (req.method !== 'GET') {
          res.writeHead(200);
          return res.end('done');
        }
        res.writeHead(200, { 'cache-control': 'max-age=60' });
        res.end(`v${n}`);
      });
      await fetch(`${base}/dav/x`);
      expect(await (await fetch(`${base}/dav/x`, { method })).text()).toBe('done');
      expect(await (await fetch(`${base}/dav/x`)).text()).not.toBe('v1');
      expect(origin.seen.filter((s) => s.method === 'GET')).toHaveLength(2);
    });
  }

  it('OPTIONS does not invalidate (safe)', async () => {
    const { origin, base } = await setup(counting());
    await fetch(`${base}/o`);
    await fetch(`${base}/o`, { method: 'OPTIONS' });
    expect(await (await fetch(`${base}/o`)).text()).toBe('call 1');
    expect(origin.seen.filter((s) => s.method === 'GET')).toHaveLength(1);
  });

  it('a relative Location is resolved against the request URL: POST /api/items → items/5 is /api/items/5', async () => {
    const { base } = await setup((req, res, n) => {
      if (req.method === 'POST') {
        res.writeHead(201, { location: 'items/5' });
        return res.end();
      }
      res.writeHead(200, { 'cache-control': 'max-age=60' });
      res.end(`${req.url} ${n}`);
    });
    await fetch(`${base}/api/items/5`);
    await fetch(`${base}/items/5`);
    await fetch(`${base}/api/items`, { method: 'POST', body: '{}' });
    expect(await (await fetch(`${base}/api/items/5`)).text()).toBe('/api/items/5 2');
    expect(await (await fetch(`${base}/items/5`)).text()).toBe('/items/5 1');
  });

  it("the upstream's path prefix is taken off Location and Content-Location before they name entries", async () => {
    const clock = new ManualClock(CLOCK_START);
    const origin = await startOrigin(
      (req, res, n) => {
        if (req.method === 'PUT') {
          res.writeHead(200, { location: '/v1/a', 'content-location': `http://127.0.0.1:${origin.port}/v1/b` });
          return res.end();
        }
        res.writeHead(200, { 'cache-control': 'max-age=60' });
        res.end(`${req.url} ${n}`);
      },
      { clock },
    );
    onTestFinished(() => origin.close());
    const server = await startSidecache(httpListenerYaml(`${origin.url}/v1`), { clock });
    onTestFinished(async () => void (await server.stop(100)));
    const base = server.httpListeners[0]!.url;
    for (const path of ['/a', '/b', '/c']) await fetch(`${base}${path}`);
    await fetch(`${base}/c`, { method: 'PUT', body: 'x' });
    expect(await (await fetch(`${base}/a`)).text()).toBe('/v1/a 2');
    expect(await (await fetch(`${base}/b`)).text()).toBe('/v1/b 2');
    // The PUT was the origin's call 2 for /v1/c.
    expect(await (await fetch(`${base}/c`)).text()).toBe('/v1/c 3');
  });
});

describe('http: revalidation answers', () => {
  it('a 304 with Set-Cookie passes the cookie to the requester, and the store never keeps it', async () => {
    const { base, clock } = await setup((req, res) => {
      if (req.headers['if-none-match'] === '"a"') {
        res.writeHead(304, { 'set-cookie': 'session=for-this-client', 'cache-control': 'max-age=1', etag: '"a"' });
        return res.end();
      }
      res.writeHead(200, { 'cache-control': 'max-age=1', etag: '"a"' });
      res.end('doc');
    });
    await fetch(`${base}/r`);
    clock.advance(2000);
    const revalidated = await fetch(`${base}/r`);
    expect(revalidated.headers.get('cache-status')).toContain('fwd-status=304');
    expect(revalidated.headers.get('set-cookie')).toBe('session=for-this-client');
    const hit = await fetch(`${base}/r`);
    expect(hit.headers.get('cache-status')).toMatch(/^sidecache; hit/);
    expect(hit.headers.get('set-cookie')).toBeNull();
  });

  it('If-None-Match on a stored 404 answers 404, not 304 (RFC 9110 §13.2.1)', async () => {
    // fetch() adds `Cache-Control: no-cache` to a conditional request: the route ignores it.
    const { base } = await setup((_req, res) => {
      res.writeHead(404, { 'cache-control': 'max-age=60', etag: '"gone"' });
      res.end('not found');
    }, '    rules:\n      - { path: "/**", ignoreRequestCacheControl: true }\n');
    await fetch(`${base}/missing`);
    const res = await fetch(`${base}/missing`, { headers: { 'if-none-match': '"gone"' } });
    expect([res.status, await res.text()]).toEqual([404, 'not found']);
    expect(res.headers.get('cache-status')).toMatch(/^sidecache; hit/);
  });

  it('must-revalidate with the origin down answers 504, not 502 (RFC 9111 §5.2.2.2)', async () => {
    const { origin, base, clock } = await setup((_req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=1, must-revalidate', etag: '"a"' });
      res.end('doc');
    });
    await fetch(`${base}/m`);
    clock.advance(2000);
    await origin.close();
    const res = await fetch(`${base}/m`);
    expect(res.status).toBe(504);
    expect(res.headers.get('cache-status')).toContain('detail=UPSTREAM-CONNECT');
  });

  it('only-if-cached with nothing stored answers 504 without asking the origin (RFC 9111 §5.2.1.7)', async () => {
    const { origin, base, clock } = await setup(counting('max-age=1'), HONOUR_REQUEST_CC);
    const none = await fetch(`${base}/oic`, { headers: { 'cache-control': 'only-if-cached' } });
    expect(none.status).toBe(504);
    expect(none.headers.get('cache-status')).toBe('sidecache; fwd=uri-miss; detail=only-if-cached');
    expect(origin.calls('/oic')).toBe(0);
    await fetch(`${base}/oic`);
    const hit = await fetch(`${base}/oic`, { headers: { 'cache-control': 'only-if-cached' } });
    expect([hit.status, await hit.text()]).toEqual([200, 'call 1']);
    clock.advance(2000);
    const stale = await fetch(`${base}/oic`, { headers: { 'cache-control': 'only-if-cached' } });
    expect(stale.status).toBe(504);
    expect(origin.calls('/oic')).toBe(1);
  });
});

describe('http: Cache-Control read as RFC 9111 §5.2 says', () => {
  it('directive names are case-insensitive: No-Store is not stored', async () => {
    const { origin, base } = await setup(counting('No-Store'));
    await fetch(`${base}/ns`);
    const second = await fetch(`${base}/ns`);
    expect(await second.text()).toBe('call 2');
    expect(second.headers.get('cache-status')).toContain('detail=no-store');
    expect(origin.calls('/ns')).toBe(2);
  });

  it('directive names are case-insensitive: Max-Age=60 is fresh for 60 s', async () => {
    const { base } = await setup(counting('Public, Max-Age=60'));
    expect((await fetch(`${base}/ma`)).headers.get('cache-status')).toBe('sidecache; fwd=uri-miss; ttl=60; stored');
    expect(await (await fetch(`${base}/ma`)).text()).toBe('call 1');
  });

  it('directive names are case-insensitive: No-CaChE is revalidated every time', async () => {
    const { origin, base } = await setup((_req, res, n) => {
      res.writeHead(200, { 'cache-control': 'Max-Age=60, No-CaChE', etag: `"${n}"` });
      res.end(`call ${n}`);
    });
    await fetch(`${base}/nc`);
    expect(await (await fetch(`${base}/nc`)).text()).toBe('call 2');
    expect(origin.calls('/nc')).toBe(2);
  });

  it('two Cache-Control fields are one list, not a 502', async () => {
    const { origin, base } = await setup((_req, res, n) => {
      res.setHeader('cache-control', ['public', 'max-age=60']);
      res.writeHead(200);
      res.end(`call ${n}`);
    });
    const first = await fetch(`${base}/two`);
    expect(first.status).toBe(200);
    expect(first.headers.get('cache-status')).toBe('sidecache; fwd=uri-miss; ttl=60; stored');
    expect(await (await fetch(`${base}/two`)).text()).toBe('call 1');
    expect(origin.calls('/two')).toBe(1);
  });

  it('two Cache-Control fields where the second says no-store are not stored', async () => {
    const { origin, base } = await setup((_req, res, n) => {
      res.setHeader('cache-control', ['max-age=60', 'no-store']);
      res.writeHead(200);
      res.end(`call ${n}`);
    });
    await fetch(`${base}/two`);
    expect(await (await fetch(`${base}/two`)).text()).toBe('call 2');
    expect(origin.calls('/two')).toBe(2);
  });
});

describe('http: targeted cache control (RFC 9213)', () => {
  it('CDN-Cache-Control replaces Cache-Control for this cache, and is forwarded', async () => {
    const { origin, base } = await setup((_req, res, n) => {
      res.writeHead(200, { 'cache-control': 'no-store', 'cdn-cache-control': 'max-age=60' });
      res.end(`call ${n}`);
    });
    const first = await fetch(`${base}/t`);
    expect(first.headers.get('cache-status')).toBe('sidecache; fwd=uri-miss; ttl=60; stored');
    expect(first.headers.get('cache-control')).toBe('no-store');
    expect(first.headers.get('cdn-cache-control')).toBe('max-age=60');
    expect(await (await fetch(`${base}/t`)).text()).toBe('call 1');
    expect(origin.calls('/t')).toBe(1);
  });

  it('CDN-Cache-Control: no-store keeps a response Cache-Control would store out of the store', async () => {
    const { origin, base } = await setup((_req, res, n) => {
      res.writeHead(200, { 'cache-control': 'max-age=60', 'cdn-cache-control': 'no-store' });
      res.end(`call ${n}`);
    });
    await fetch(`${base}/t`);
    expect(await (await fetch(`${base}/t`)).text()).toBe('call 2');
    expect(origin.calls('/t')).toBe(2);
  });

  it('the listener targetedCacheControl field comes first and is not forwarded; an invalid one is ignored', async () => {
    const { base } = await setup((req, res, n) => {
      const own = req.url === '/bad' ? 'Max-Age=5' : 'max-age=30';
      res.writeHead(200, { 'cache-control': 'max-age=5', 'cdn-cache-control': 'max-age=10', 'my-cache-control': own });
      res.end(`call ${n}`);
    }, '    targetedCacheControl: My-Cache-Control\n');
    const own = await fetch(`${base}/good`);
    expect(own.headers.get('cache-status')).toBe('sidecache; fwd=uri-miss; ttl=30; stored');
    expect(own.headers.get('my-cache-control')).toBeNull();
    // Upper-case keys are not a Structured Fields dictionary: the next field in the list applies.
    expect((await fetch(`${base}/bad`)).headers.get('cache-status')).toBe('sidecache; fwd=uri-miss; ttl=10; stored');
  });

  it('Sidecache-Cache-Control is the default targeted field', async () => {
    const { base } = await setup((_req, res, n) => {
      res.writeHead(200, { 'cache-control': 'private', 'sidecache-cache-control': 'max-age=20' });
      res.end(`call ${n}`);
    });
    const first = await fetch(`${base}/d`);
    expect(first.headers.get('cache-status')).toBe('sidecache; fwd=uri-miss; ttl=20; stored');
    expect(first.headers.get('sidecache-cache-control')).toBeNull();
  });
});

describe('http: the leader streams its body whatever the fill timeout', () => {
  it('a body that keeps arriving is not cut after connectTimeout + headersTimeout', async () => {
    const chunks = 12;
    const origin = http.createServer((_req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=60' });
      let sent = 0;
      // The origin's own pace: a chunk every 40 ms, 480 ms in all, past the 200 ms fill timeout.
      const timer = setInterval(() => {
        res.write(`chunk ${sent}\n`);
        if (++sent === chunks) {
          clearInterval(timer);
          res.end();
        }
      }, 40);
      res.on('close', () => clearInterval(timer));
    });
    await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
    onTestFinished(() => new Promise<void>((resolve) => origin.close(() => resolve())));
    const server = await startSidecache(
      httpListenerYaml(
        `http://127.0.0.1:${(origin.address() as AddressInfo).port}`,
        '    connectTimeout: 100ms\n    headersTimeout: 100ms\n    bodyTimeout: 5s\n',
      ),
    );
    onTestFinished(async () => void (await server.stop(100)));
    const res = await fetch(`${server.httpListeners[0]!.url}/slow`);
    const text = await res.text();
    expect(text.split('\n').filter((l) => l !== '')).toHaveLength(chunks);
  });
});
