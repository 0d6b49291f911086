import { describe, expect, it } from 'vitest';
import { request } from '../../helpers/client.js';
import { counting, useHttpSetup } from '../../helpers/http-setup.js';
import type { OriginHandler } from '../../helpers/origin.js';
import { send } from './raw.js';

const setup = useHttpSetup();

describe('http: Vary, absent vs present but empty (RFC 9111 §4.1)', () => {
  it('a request with an empty X-Tenant is not answered from the entry stored for one without it', async () => {
    const { origin, base } = await setup((req, res, n) => {
      res.writeHead(200, { 'cache-control': 'max-age=60', vary: 'X-Tenant' });
      res.end(`${req.headers['x-tenant'] === undefined ? 'absent' : `tenant=[${req.headers['x-tenant']}]`} ${n}`);
    });
    expect((await request(`${base}/t`)).body).toBe('absent 1');
    expect((await request(`${base}/t`)).body).toBe('absent 1');
    expect((await request(`${base}/t`, { headers: { 'x-tenant': '' } })).body).toBe('tenant=[] 2');
    expect((await request(`${base}/t`, { headers: { 'x-tenant': '' } })).body).toBe('tenant=[] 2');
    expect((await request(`${base}/t`)).body).toBe('absent 1');
    expect(origin.calls('/t')).toBe(2);
  });
});

describe('http: OPTIONS * (RFC 9110 §9.3.7)', () => {
  it('is forwarded to the upstream and its answer comes back', async () => {
    const { origin, base } = await setup((req, res) => {
      if (req.method === 'OPTIONS' && req.url === '*') {
        res.writeHead(204, { allow: 'GET, HEAD, OPTIONS' });
        return res.end();
      }
      res.writeHead(404);
      res.end();
    });
    const res = await send(base, '*', { method: 'OPTIONS' });
    expect(res.status).toBe(204);
    expect(res.headers.allow).toBe('GET, HEAD, OPTIONS');
    expect(origin.seen.map((s) => `${s.method} ${s.url}`)).toEqual(['OPTIONS *']);
  });

  it('* is still refused for any other method', async () => {
    const { origin, base } = await setup(counting());
    expect((await send(base, '*', { method: 'GET' })).status).toBe(400);
    expect(origin.seen).toHaveLength(0);
  });
});

describe('http: same-origin Location is decided without the client Host (RFC 9111 §4.4)', () => {
  const handler: OriginHandler = (req, res, n) => {
    if (req.method === 'POST') {
      res.writeHead(201, { location: 'http://victim.example/a' });
      res.end();
      return;
    }
    res.writeHead(200, { 'cache-control': 'max-age=60' });
    res.end(`${req.url} ${n}`);
  };

  it('a forged Host does not make a Location on another host name this listener', async () => {
    const { base } = await setup(handler);
    expect((await request(`${base}/a`)).body).toBe('/a 1');
    await request(`${base}/x`, { method: 'POST', body: '{}', headers: { host: 'victim.example' } });
    expect((await request(`${base}/a`)).body).toBe('/a 1');
  });

  it('a Location on http[].host does name this listener', async () => {
    const { base } = await setup(handler, '    host: "victim.example"\n');
    expect((await request(`${base}/a`)).body).toBe('/a 1');
    await request(`${base}/x`, { method: 'POST', body: '{}' });
    expect((await request(`${base}/a`)).body).toBe('/a 2');
  });
});

describe('http: invalidation prefixes are read in the normal form of paths', () => {
  it('{"prefixes":["/%75sers/"]} removes /users/1', async () => {
    const { origin, server, base } = await setup(counting());
    await request(`${base}/users/1`);
    await request(`${base}/other`);
    const res = await request(`${server.adminUrl}/invalidate`, {
      method: 'POST',
      body: '{"prefixes":["/%75sers/"]}',
      headers: { 'content-type': 'application/json' },
    });
    expect(JSON.parse(res.body)).toEqual({ invalidated: 1 });
    expect((await request(`${base}/users/1`)).body).toBe('call 2');
    expect(origin.calls('/users/1')).toBe(2);
  });
});
