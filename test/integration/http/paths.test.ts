import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { useHttpSetup } from '../../helpers/http-setup.js';
import { send } from './raw.js';

const setup = useHttpSetup();

/**
 * An origin that normalises paths (decodes, resolves dots, merges slashes, as many frameworks do)
 * and marks a private page cacheable by mistake: the `cache: false` rule is what protects it.
 */
function normalising(req: IncomingMessage, res: ServerResponse, n: number): void {
  const path = decodeURIComponent(new URL(req.url ?? '/', 'http://origin').pathname).replace(/\/{2,}/g, '/');
  res.writeHead(200, { 'cache-control': 'max-age=60' });
  res.end(path.startsWith('/private/') ? `secret of ${String(req.headers.cookie)}` : `${path} ${n}`);
}

const PRIVATE = '    rules:\n      - { path: "/private/**", cache: false }\n';

describe('http listener: one normal form of the path for rules, keys, invalidation and the upstream', () => {
  it.each(['/%70rivate/me', '/./private/me', '/x/../private/me', '//private/me', '/%2e%2e/private/me'])('%s follows the cache: false rule', async (path) => {
    const { origin, base } = await setup(normalising, PRIVATE);
    expect((await send(base, path, { headers: { cookie: 'user=a' } })).body).toBe('secret of user=a');
    const second = await send(base, path, { headers: { cookie: 'user=b' } });
    expect(second.body).toBe('secret of user=b');
    expect(second.headers['cache-status']).toBe('sidecache; fwd=bypass');
    // What the origin is asked for is the normal form, the one the rules and keys saw.
    expect(origin.seen.map((s) => s.url)).toEqual(['/private/me', '/private/me']);
  });

  it.each(['/private%2Fme', '/PRIVATE/me', '/Private/me', '/private;jsessionid=1/me', '/private\\me', '/%2570rivate/me', '/x%2F..%2Fprivate/me'])(
    '%s, which a lenient origin reads as /private/me, is passed through too (default deny)',
    async (path) => {
      // Origins that decode %2F, fold case (IIS), drop path parameters (servlet containers), read
      // backslashes as slashes or decode twice: no RFC says so, so sidecache cannot know they will not.
      const { base } = await setup((req, res, n) => {
        let p = (req.url ?? '/').split('?')[0]!;
        for (let i = 0; i < 3; i++) p = decodeURIComponent(p);
        p = p
          .replace(/\\/g, '/')
          .replace(/;[^/]*/g, '')
          .toLowerCase();
        p = new URL(p.replace(/\/{2,}/g, '/'), 'http://origin').pathname;
        res.writeHead(200, { 'cache-control': 'max-age=60' });
        res.end(p.startsWith('/private/') ? `secret of ${String(req.headers.cookie)}` : `${p} ${n}`);
      }, PRIVATE);
      expect((await send(base, path, { headers: { cookie: 'user=a' } })).body).toBe('secret of user=a');
      const second = await send(base, path, { headers: { cookie: 'user=b' } });
      expect(second.body).toBe('secret of user=b');
      expect(second.headers['cache-status']).toBe('sidecache; fwd=bypass');
    },
  );

  it('spellings of one path share one entry', async () => {
    const { origin, base } = await setup(normalising);
    await send(base, '/users/1');
    for (const path of ['//users/1', '/%75sers/1', '/users/./1', '/a/../users/1', '/users/1?']) {
      expect((await send(base, path)).headers['cache-status'], path).toMatch(/hit/);
    }
    expect(await send(base, '/q?a=%7e&b=%2f').then((r) => r.body)).toBe('/q 1');
    expect((await send(base, '/q?a=~&b=%2F')).headers['cache-status']).toMatch(/hit/);
    expect(origin.seen.map((s) => s.url)).toEqual(['/users/1', '/q?a=~&b=%2F']);
  });

  it('PURGE and unsafe methods on the normal form reach entries stored under another spelling', async () => {
    const { origin, base } = await setup((req, res, n) => {
      if (req.method !== 'GET') return res.end('written');
      res.writeHead(200, { 'cache-control': 'max-age=60' });
      res.end(`${req.url} ${n}`);
    });
    await send(base, '//users/2');
    await send(base, '/%75sers/3');
    await send(base, '/inv/a?');
    expect((await send(base, '/users/2', { method: 'PURGE' })).body).toBe('{"purged":1}\n');
    await send(base, '/users/3', { method: 'POST', body: 'x' });
    await send(base, '/inv/a', { method: 'DELETE' });
    expect((await send(base, '//users/2')).body).toBe('/users/2 2');
    expect((await send(base, '/%75sers/3')).body).toBe('/users/3 3');
    expect((await send(base, '/inv/a?')).body).toBe('/inv/a 3');
    expect(origin.calls('/users/2')).toBe(2);
  });

  it('Location and Content-Location of an unsafe method are invalidated in their normal form', async () => {
    const { base } = await setup((req, res, n) => {
      if (req.method !== 'GET') {
        res.writeHead(201, { location: '/%69tems//7', 'content-location': `http://${req.headers.host}/items/./8?` });
        return res.end('written');
      }
      res.writeHead(200, { 'cache-control': 'max-age=60' });
      res.end(`${req.url} ${n}`);
    });
    await send(base, '/items/7');
    await send(base, '/items/8');
    await send(base, '/items', { method: 'POST', body: 'x' });
    expect((await send(base, '/items/7')).body).toBe('/items/7 2');
    expect((await send(base, '/items/8')).body).toBe('/items/8 2');
  });

  it('answers 400 to a malformed percent-encoding, without asking the upstream', async () => {
    const { origin, base } = await setup(normalising);
    expect((await send(base, '/a%zz')).status).toBe(400);
    expect((await send(base, '/a%4')).status).toBe(400);
    expect(origin.seen).toEqual([]);
  });
});

describe('http listener: absolute-form request targets', () => {
  it('an absolute target naming the listener itself is its origin-form path; rules apply', async () => {
    const { origin, base } = await setup(normalising, PRIVATE);
    const { host } = new URL(base);
    expect((await send(base, `http://${host}/private/me`, { headers: { cookie: 'user=a' } })).body).toBe('secret of user=a');
    expect((await send(base, `http://${host}/private/me`, { headers: { cookie: 'user=b' } })).body).toBe('secret of user=b');
    expect((await send(base, `http://${host}/pub`)).body).toBe('/pub 1');
    expect((await send(base, '/pub')).headers['cache-status']).toMatch(/hit/);
    expect(origin.seen.map((s) => s.url)).toEqual(['/private/me', '/private/me', '/pub']);
  });

  it('an absolute target naming http[].host is accepted too', async () => {
    const { origin, base } = await setup(normalising, '    host: api.example.com\n');
    expect((await send(base, 'http://API.example.com:80/pub')).body).toBe('/pub 1');
    expect(origin.seen.map((s) => s.url)).toEqual(['/pub']);
  });

  it('answers 400 to an absolute target for another authority and forwards nothing', async () => {
    const { origin, base } = await setup(normalising);
    for (const target of ['http://evil.example/x', 'https://evil.example/x', '*']) {
      expect((await send(base, target)).status, target).toBe(400);
    }
    expect(origin.seen).toEqual([]);
  });
});
