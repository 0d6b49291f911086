import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { parseConfig } from '../../src/config/load.js';
import { Logger } from '../../src/log.js';
import { SidecacheServer } from '../../src/server.js';
import { request } from '../helpers/client.js';

const servers: SidecacheServer[] = [];

afterEach(async () => {
  for (const s of servers.splice(0)) await s.stop(100);
});

async function startServer(yaml = 'admin: { listen: "127.0.0.1:0" }\n', lines: string[] = []): Promise<SidecacheServer> {
  const log = new Logger({ level: 'warn', sink: (line) => void lines.push(line) });
  const server = new SidecacheServer(parseConfig(yaml, 'test.yaml', {}), { clock: new ManualClock(), log });
  servers.push(server);
  await server.start();
  return server;
}

/** A stored entry that `{"all":true}` would remove: tells whether a refused write still flushed. */
function seed(server: SidecacheServer): void {
  server.store.set('seed', { body: Buffer.from('x'), ttlMs: 60_000 });
}

const JSON_TYPE = { 'content-type': 'application/json' };

describe('admin writes a browser can forge (no token)', () => {
  it('refuses a cross-site text/plain POST {"all":true} with 415, and flushes nothing', async () => {
    const server = await startServer();
    seed(server);
    const url = `${server.adminUrl}/invalidate`;
    const plain = await request(url, { method: 'POST', body: '{"all":true}', headers: { 'content-type': 'text/plain;charset=UTF-8' } });
    expect(plain.status).toBe(415);
    const form = await request(url, { method: 'POST', body: '{"all":true}', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(form.status).toBe(415);
    expect((await request(url, { method: 'POST', body: '{"all":true}' })).status).toBe(415);
    expect(server.store.get('seed')).toBeDefined();
    const ok = await request(url, { method: 'POST', body: '{"all":true}', headers: { 'content-type': 'application/json; charset=utf-8' } });
    expect([ok.status, JSON.parse(ok.body)]).toEqual([200, { invalidated: 1 }]);
  });

  it('refuses POST /reload without the JSON content type', async () => {
    const server = await startServer();
    expect((await request(`${server.adminUrl}/reload`, { method: 'POST', headers: { 'content-type': 'text/plain' } })).status).toBe(415);
  });

  it('refuses a Host that is a name other than localhost (DNS rebinding)', async () => {
    const server = await startServer();
    seed(server);
    const { port } = new URL(server.adminUrl);
    const res = await request(`${server.adminUrl}/invalidate`, {
      method: 'POST',
      body: '{"all":true}',
      headers: { ...JSON_TYPE, host: `rebind.attacker.example:${port}` },
    });
    expect(res.status).toBe(403);
    expect(server.store.get('seed')).toBeDefined();
    const local = await request(`${server.adminUrl}/invalidate`, {
      method: 'POST',
      body: '{"tags":["x"]}',
      headers: { ...JSON_TYPE, host: `localhost:${port}` },
    });
    expect(local.status).toBe(200);
  });

  it('refuses /cache/explain (it makes sidecache ask the catalog) under a rebound Host, but not /metrics', async () => {
    const server = await startServer();
    const { port } = new URL(server.adminUrl);
    const host = `rebind.attacker.example:${port}`;
    expect((await request(`${server.adminUrl}/cache/explain?listener=x&sql=select%201`, { headers: { host } })).status).toBe(403);
    expect((await request(`${server.adminUrl}/cache/explain?listener=x&sql=select%201`)).status).toBe(404);
    expect((await request(`${server.adminUrl}/metrics`, { headers: { host } })).status).toBe(200);
  });

  it("refuses an Origin that is not the admin's own", async () => {
    const server = await startServer();
    seed(server);
    const url = `${server.adminUrl}/invalidate`;
    for (const origin of ['http://evil.example', 'null', 'https://127.0.0.1:1']) {
      expect((await request(url, { method: 'POST', body: '{"all":true}', headers: { ...JSON_TYPE, origin } })).status).toBe(403);
    }
    expect(server.store.get('seed')).toBeDefined();
    const own = new URL(server.adminUrl).origin;
    expect((await request(url, { method: 'POST', body: '{"tags":["x"]}', headers: { ...JSON_TYPE, origin: own } })).status).toBe(200);
  });

  it('with a token, any Host is accepted (a browser cannot send the token), but the content type still counts', async () => {
    const server = await startServer('admin: { listen: "127.0.0.1:0", token: s3cret }\n');
    const headers = { ...JSON_TYPE, authorization: 'Bearer s3cret', host: 'sidecache-admin.internal:9090' };
    expect((await request(`${server.adminUrl}/invalidate`, { method: 'POST', body: '{"tags":["x"]}', headers })).status).toBe(200);
    const plain = { ...headers, 'content-type': 'text/plain' };
    expect((await request(`${server.adminUrl}/invalidate`, { method: 'POST', body: '{"tags":["x"]}', headers: plain })).status).toBe(415);
  });

  it('warns with SC_WARN_ADMIN_OPEN when the admin listens beyond loopback without a token (allowUnauthenticated: without it, the configuration is refused)', async () => {
    const lines: string[] = [];
    await startServer('admin: { listen: "0.0.0.0:0", allowUnauthenticated: true }\n', lines);
    expect(lines.some((l) => l.includes('SC_WARN_ADMIN_OPEN'))).toBe(true);
    const quiet: string[] = [];
    await startServer('admin: { listen: "127.0.0.1:0" }\n', quiet);
    expect(quiet.some((l) => l.includes('SC_WARN_ADMIN_OPEN'))).toBe(false);
  });
});
