import { describe, expect, it } from 'vitest';
import { request } from '../../helpers/client.js';
import { useHttpSetup } from '../../helpers/http-setup.js';

const setup = useHttpSetup();

const cached = (tags?: string) => (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse, n: number) => {
  if (req.method !== 'GET') {
    res.writeHead(
      req.url === '/items' ? 201 : 200,
      req.url === '/items' ? { location: '/items/7', 'content-location': `http://${req.headers.host}/items/8` } : {},
    );
    return res.end('written');
  }
  res.writeHead(200, { 'cache-control': 'max-age=60', ...(tags && { 'surrogate-key': tags }) });
  res.end(`${req.url} ${n}`);
};

describe('http read-through: invalidation', () => {
  it('drops entries by Surrogate-Key tags through POST /invalidate, and hides the tag header', async () => {
    const { base, server } = await setup(cached('user:1 users'));
    const first = await fetch(`${base}/users/1`);
    expect(first.headers.get('surrogate-key')).toBeNull();
    await fetch(`${base}/users/1?full`);
    const res = await fetch(`${server.adminUrl}/invalidate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"tags":["user:1"]}' });
    expect(await res.json()).toEqual({ invalidated: 2 });
    expect(await (await fetch(`${base}/users/1`)).text()).toBe('/users/1 2');
  });

  it('exposes the tag header when exposeTags is set, and answers prefix invalidations', async () => {
    const { base, server } = await setup(cached('a b'), '    exposeTags: true\n');
    expect((await fetch(`${base}/docs/x`)).headers.get('surrogate-key')).toBe('a b');
    await fetch(`${base}/docs/y?q=1`);
    await fetch(`${base}/other`);
    const res = await fetch(`${server.adminUrl}/invalidate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"prefixes":["/docs/"]}',
    });
    expect(await res.json()).toEqual({ invalidated: 2 });
    expect((await fetch(`${base}/other`)).headers.get('cache-status')).toMatch(/hit/);
  });

  it('a 2xx to POST/PUT/PATCH/DELETE invalidates the target and same-origin Location / Content-Location', async () => {
    const { base, origin } = await setup(cached());
    for (const path of ['/items', '/items/7', '/items/8', '/items/9']) await fetch(`${base}${path}`);
    const post = await fetch(`${base}/items`, { method: 'POST', body: '{"name":"x"}', headers: { 'content-type': 'application/json' } });
    expect(post.status).toBe(201);
    expect(post.headers.get('cache-status')).toBe('sidecache; fwd=method');
    expect(origin.seen.find((s) => s.method === 'POST')?.body).toBe('{"name":"x"}');
    // The origin counts the POST too.
    expect(await (await fetch(`${base}/items`)).text()).toBe('/items 3');
    expect(await (await fetch(`${base}/items/7`)).text()).toBe('/items/7 2');
    expect(await (await fetch(`${base}/items/8`)).text()).toBe('/items/8 2');
    expect(await (await fetch(`${base}/items/9`)).text()).toBe('/items/9 1');
    for (const method of ['PUT', 'PATCH', 'DELETE']) {
      await fetch(`${base}/items/9`, { method, body: method === 'DELETE' ? null : 'x' });
      expect(await (await fetch(`${base}/items/9`)).text()).toMatch(/ \d+$/);
    }
    expect(origin.calls('/items/9')).toBe(1 + 3 * 2);
  });

  it('PURGE removes every variant of a URL from loopback, and needs the token when one is set', async () => {
    const { base, origin } = await setup((req, res, n) => {
      res.writeHead(200, { 'cache-control': 'max-age=60', vary: 'accept' });
      res.end(`${req.headers.accept} ${n}`);
    });
    await request(`${base}/p`, { headers: { accept: 'a' } });
    await request(`${base}/p`, { headers: { accept: 'b' } });
    const purge = await request(`${base}/p`, { method: 'PURGE' });
    expect([purge.status, JSON.parse(purge.body)]).toEqual([200, { purged: 2 }]);
    expect((await request(`${base}/p`, { headers: { accept: 'a' } })).body).toBe('a 3');
    expect(origin.calls('/p')).toBe(3);

    const locked = await setup(cached(), '', 'admin: { listen: "127.0.0.1:0", token: s3cret }\n');
    await fetch(`${locked.base}/q`);
    expect((await request(`${locked.base}/q`, { method: 'PURGE' })).status).toBe(401);
    expect((await request(`${locked.base}/q`, { method: 'PURGE', headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    expect((await fetch(`${locked.base}/q`)).headers.get('cache-status')).toMatch(/hit/);
    const allowed = await request(`${locked.base}/q`, { method: 'PURGE', headers: { authorization: 'Bearer s3cret' } });
    expect(JSON.parse(allowed.body)).toEqual({ purged: 1 });
    expect((await fetch(`${locked.base}/q`)).headers.get('cache-status')).toMatch(/uri-miss/);
  });
});
