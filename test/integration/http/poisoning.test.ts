import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { counting, useHttpSetup } from '../../helpers/http-setup.js';
import { send } from './raw.js';

const setup = useHttpSetup();

/** An origin that builds absolute links from the forwarded host, as frameworks do behind a proxy. */
function linking(req: IncomingMessage, res: ServerResponse, n: number): void {
  const host = req.headers['x-forwarded-host'] ?? req.headers.host;
  res.writeHead(200, { 'cache-control': 'max-age=60' });
  res.end(`call ${n}: http://${String(host)}/next`);
}

/** The fields a client may send to steer what an origin builds or does; removed by default. */
const STEERING = {
  'x-forwarded-host': 'evil.example',
  'x-forwarded-proto': 'gopher',
  'x-forwarded-port': '666',
  'x-forwarded-prefix': '/evil',
  'x-forwarded-server': 'evil.example',
  'x-forwarded-scheme': 'evil',
  'x-forwarded-ssl': 'evil-on',
  'front-end-https': 'evil-on',
  'x-host': 'evil.example',
  forwarded: 'host=evil.example;proto=https',
  'x-http-method-override': 'DELETE',
  'x-method-override': 'DELETE',
  'x-original-url': '/admin',
  'x-rewrite-url': '/admin',
};

describe('http listener: a stored response depends only on the key (no poisoning)', () => {
  it("a client's Host, even with no-cache, never reaches what is stored for everyone", async () => {
    const { origin, base } = await setup(linking);
    await send(base, '/page');
    const attack = await send(base, '/page', { headers: { host: 'evil.example', 'cache-control': 'no-cache' } });
    expect(attack.body).not.toContain('evil.example');
    const victim = await send(base, '/page');
    expect(victim.body).not.toContain('evil.example');
    for (const seen of origin.seen) expect(seen.headers['x-forwarded-host']).toBeUndefined();
  });

  it('removes X-Forwarded-*, Forwarded, method overrides and URL rewrites sent by clients, on every path', async () => {
    const { origin, base } = await setup(counting(), '    rules:\n      - { path: "/through", cache: false }\n');
    await send(base, '/stored', { headers: STEERING });
    await send(base, '/through', { headers: STEERING });
    await send(base, '/written', { method: 'POST', headers: STEERING, body: 'x' });
    expect(origin.seen.map((s) => s.url)).toEqual(['/stored', '/through', '/written']);
    for (const seen of origin.seen) {
      for (const name of Object.keys(STEERING)) expect(seen.headers[name] === undefined || !String(seen.headers[name]).includes('evil')).toBe(true);
      expect(seen.headers['x-forwarded-host']).toBeUndefined();
      expect(seen.headers['x-forwarded-proto']).toBe('http');
      expect(seen.headers.forwarded).toBeUndefined();
      expect(seen.headers['x-http-method-override']).toBeUndefined();
      expect(seen.headers['x-method-override']).toBeUndefined();
      expect(seen.headers['x-original-url']).toBeUndefined();
      expect(seen.headers['x-rewrite-url']).toBeUndefined();
      expect(seen.headers['x-forwarded-port']).toBeUndefined();
      expect(seen.headers['x-forwarded-prefix']).toBeUndefined();
      expect(seen.headers['x-host']).toBeUndefined();
    }
  });

  it('with http[].host, X-Forwarded-Host is always that host', async () => {
    const { origin, base } = await setup(linking, '    host: api.example.com\n');
    await send(base, '/page', { headers: { host: 'evil.example', 'x-forwarded-host': 'evil.example' } });
    const victim = await send(base, '/page');
    expect(victim.body).toBe('call 1: http://api.example.com/next');
    expect(origin.seen[0]!.headers['x-forwarded-host']).toBe('api.example.com');
  });

  it('stripRequestHeaders replaces the default list', async () => {
    const { origin, base } = await setup(counting(), '    stripRequestHeaders: [X-Debug]\n');
    await send(base, '/a', { headers: { 'x-debug': '1', 'x-http-method-override': 'PUT' } });
    expect(origin.seen[0]!.headers['x-debug']).toBeUndefined();
    expect(origin.seen[0]!.headers['x-http-method-override']).toBe('PUT');
  });

  it("clients' Cache-Control and Pragma neither bypass nor replace a fresh shared entry by default", async () => {
    // An origin that honours a method override: the 405 it answers must not become everyone's answer.
    const { origin, base } = await setup((req, res, n) => {
      res.writeHead(req.headers['x-http-method-override'] === undefined ? 200 : 405, { 'cache-control': 'max-age=60' });
      res.end(`call ${n}`);
    });
    expect((await send(base, '/r')).body).toBe('call 1');
    const forcing: Record<string, string>[] = [{ 'cache-control': 'no-cache' }, { 'cache-control': 'max-age=0' }, { pragma: 'no-cache' }];
    for (const headers of forcing) {
      const again = await send(base, '/r', { headers: { ...headers, 'x-http-method-override': 'DELETE' } });
      expect([again.status, again.body]).toEqual([200, 'call 1']);
      expect(again.headers['cache-status']).toMatch(/hit/);
    }
    expect(origin.calls('/r')).toBe(1);
  });

  it('ignoreRequestCacheControl: false on the listener honours them again; a rule may still set it', async () => {
    const { origin, base } = await setup(
      counting(),
      '    ignoreRequestCacheControl: false\n    rules:\n      - { path: "/firm", ignoreRequestCacheControl: true }\n',
    );
    await send(base, '/soft');
    expect((await send(base, '/soft', { headers: { 'cache-control': 'no-cache' } })).body).toBe('call 2');
    await send(base, '/firm');
    expect((await send(base, '/firm', { headers: { 'cache-control': 'no-cache' } })).body).toBe('call 1');
    expect(origin.calls('/firm')).toBe(1);
  });
});
