import diagnostics from 'node:diagnostics_channel';
import type http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import { parseConfig } from '../../src/config/load.js';
import { channels } from '../../src/events.js';
import { Logger } from '../../src/log.js';
import { SidecacheServer } from '../../src/server.js';
import { waitFor } from '../helpers/wait.js';

const servers: SidecacheServer[] = [];

/** Resolves when a node:http server in this process has parsed the head of a request for `url`. */
function requestStarted(url: string): Promise<void> {
  return new Promise((resolve) => {
    const onStart = (message: unknown): void => {
      if ((message as { request: http.IncomingMessage }).request.url !== url) return;
      diagnostics.unsubscribe('http.server.request.start', onStart);
      resolve();
    };
    diagnostics.subscribe('http.server.request.start', onStart);
  });
}

/** Whether a TCP connection to `port` is accepted (the probe is closed at once). */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect(port, '127.0.0.1');
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}
afterEach(async () => {
  for (const s of servers.splice(0)) await s.stop(100);
});

async function startServer(yaml = 'admin: { listen: "127.0.0.1:0" }\n'): Promise<SidecacheServer> {
  const server = new SidecacheServer(parseConfig(yaml, 'test.yaml', {}), { clock: new ManualClock(), log: new Logger({ level: 'silent' }) });
  servers.push(server);
  await server.start();
  return server;
}

describe('admin server', () => {
  it('answers /healthz and /readyz, and /readyz turns 503 while stopping', async () => {
    const server = await startServer();
    expect((await fetch(`${server.adminUrl}/healthz`)).status).toBe(200);
    const ready = await fetch(`${server.adminUrl}/readyz`);
    expect([ready.status, await ready.json()]).toEqual([200, { ready: true }]);
    server.readiness.add('bus redis', () => 'disconnected');
    const down = await fetch(`${server.adminUrl}/readyz`);
    expect([down.status, await down.json()]).toEqual([503, { ready: false, reasons: ['bus redis: disconnected'] }]);
  });

  it('serves Prometheus text with every metric of docs/contracts.md and process metrics', async () => {
    const server = await startServer();
    const res = await fetch(`${server.adminUrl}/metrics`);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    for (const name of [
      'sidecache_requests_total',
      'sidecache_request_duration_seconds',
      'sidecache_upstream_duration_seconds',
      'sidecache_cache_entries',
      'sidecache_cache_bytes',
      'sidecache_evictions_total',
      'sidecache_invalidations_total',
      'sidecache_bus_connected',
      'sidecache_coalesced_total',
      'process_cpu_seconds_total',
    ]) {
      expect(text).toContain(`# TYPE ${name} `);
    }
  });

  it('applies POST /invalidate, answers the count, and the metrics follow', async () => {
    const server = await startServer();
    server.store.set('a', { body: Buffer.from('x'), ttlMs: 1000, tags: ['table:accounts'] });
    server.store.set('b', { body: Buffer.from('x'), ttlMs: 1000, tags: ['user:1'], path: '/users/1' });
    server.store.set('c', { body: Buffer.from('x'), ttlMs: 1000, tags: ['other'] });
    const post = (body: string) => fetch(`${server.adminUrl}/invalidate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    expect(await (await post('{"tables":["public.Accounts"],"prefixes":["/users/"]}')).json()).toEqual({ invalidated: 2 });
    expect(await (await post('other')).json()).toEqual({ invalidated: 0 });
    expect(server.store.size).toBe(1);
    const metrics = await (await fetch(`${server.adminUrl}/metrics`)).text();
    expect(metrics).toContain('sidecache_invalidations_total{source="admin"} 2');
    expect(metrics).toContain('sidecache_evictions_total{reason="invalidation"} 2');
    expect(metrics).toContain('sidecache_cache_entries 1');
  });

  it('refuses malformed messages with 400 and a reason', async () => {
    const server = await startServer();
    const post = (body: string) => fetch(`${server.adminUrl}/invalidate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const bad = await post('{"tags": [');
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toContain('malformed JSON');
    const typo = await post('{"tag": ["x"]}');
    expect([typo.status, ((await typo.json()) as { error: string }).error]).toEqual([400, expect.stringContaining('unknown field "tag"')]);
    expect((await fetch(`${server.adminUrl}/invalidate`)).status).toBe(405);
    expect((await fetch(`${server.adminUrl}/nope`)).status).toBe(404);
  });

  it('requires the bearer token on POST when admin.token is set', async () => {
    const server = await startServer('admin: { listen: "127.0.0.1:0", token: s3cret }\n');
    const url = `${server.adminUrl}/invalidate`;
    const none = await fetch(url, { method: 'POST', body: '{"all":true}', headers: { 'content-type': 'application/json' } });
    expect([none.status, none.headers.get('www-authenticate')]).toEqual([401, 'Bearer realm="sidecache"']);
    expect(
      (await fetch(url, { method: 'POST', body: '{"all":true}', headers: { Authorization: 'Bearer wrong', 'content-type': 'application/json' } })).status,
    ).toBe(401);
    expect(
      (await fetch(url, { method: 'POST', body: '{"all":true}', headers: { Authorization: 'Bearer s3cret', 'content-type': 'application/json' } })).status,
    ).toBe(200);
    expect((await fetch(`${server.adminUrl}/healthz`)).status).toBe(200);
  });

  it('summarizes the cache per listener at GET /cache', async () => {
    const server = await startServer();
    server.store.set('a', { body: Buffer.alloc(100), ttlMs: 1000 });
    for (const result of ['hit', 'hit', 'hit', 'miss', 'bypass'] as const) {
      channels.request.publish({ store: server.store, protocol: 'http', listener: 'api', result, durationSeconds: 0.001 });
    }
    const summary = (await (await fetch(`${server.adminUrl}/cache`)).json()) as { bytes: number };
    expect(summary).toMatchObject({
      entries: 1,
      maxBytes: 256 * 1024 ** 2,
      listeners: { api: { protocol: 'http', hit: 3, miss: 1, bypass: 1, hitRatio: 0.75 } },
    });
    expect(summary.bytes).toBeGreaterThan(100);
  });

  it('fails clearly on a taken port', async () => {
    const first = await startServer();
    const taken = new SidecacheServer(parseConfig(`admin: { listen: "127.0.0.1:${first.adminAddress.port}" }`, 't', {}), {
      log: new Logger({ level: 'silent' }),
    });
    await expect(taken.start()).rejects.toMatchObject({ code: 'SC_ERR_LISTEN' });
  });

  it('stops at once when connections are idle, lets work in flight finish within the grace, and closes what is left at the deadline', async () => {
    const idle = await startServer();
    const agent = await fetch(`${idle.adminUrl}/healthz`, { keepalive: true });
    await agent.text();
    // An idle keep-alive connection does not hold the stop until the deadline.
    expect(await idle.stop(5000)).toEqual({ forced: false });
    servers.splice(servers.indexOf(idle), 1);

    // Half a request that the server has begun to handle: work in flight when the stop begins.
    const halfRequest = async (server: SidecacheServer, rest: string) => {
      const started = requestStarted('/invalidate');
      const socket = net.connect(server.adminAddress.port, '127.0.0.1');
      let received = '';
      socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      socket.write(
        `POST /invalidate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: ${'{"tags":'.length + rest.length}\r\n\r\n{"tags":`,
      );
      await started;
      return { socket, closed, received: () => received };
    };

    const finishing = await startServer();
    const finished = await halfRequest(finishing, '["t"]}');
    const stopping = finishing.stop(10_000);
    await waitFor(async () => !(await accepts(finishing.adminAddress.port)), 'the admin server to stop accepting');
    finished.socket.write('["t"]}');
    await finished.closed;
    expect(finished.received()).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\n\{"invalidated":0\}\n?$/);
    expect(await stopping).toEqual({ forced: false });
    servers.splice(servers.indexOf(finishing), 1);

    const busy = await startServer();
    const stuck = await halfRequest(busy, '["t"]}');
    expect(await busy.stop(200)).toEqual({ forced: true });
    await stuck.closed;
    expect(stuck.received()).toBe('');
    servers.splice(servers.indexOf(busy), 1);
  });
});

describe('admin: guarded GET routes', () => {
  it('/cache/explain needs the token when one is set (it makes the catalog connect)', async () => {
    const server = new SidecacheServer(parseConfig('admin: { listen: "127.0.0.1:0", token: s3cret }\n', 't', {}), { log: new Logger({ level: 'silent' }) });
    await server.start();
    try {
      expect((await fetch(`${server.adminUrl}/cache/explain?listener=x&sql=select%201`)).status).toBe(401);
      const authorized = await fetch(`${server.adminUrl}/cache/explain?listener=x&sql=select%201`, { headers: { authorization: 'Bearer s3cret' } });
      expect(authorized.status).toBe(404);
      expect((await fetch(`${server.adminUrl}/metrics`)).status).toBe(200);
    } finally {
      await server.stop(100);
    }
  });
});
