import diagnostics from 'node:diagnostics_channel';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { request } from '../../helpers/client.js';
import { counting, useHttpSetup } from '../../helpers/http-setup.js';
import { metric, sample, startSidecache, httpListenerYaml } from '../../helpers/sidecache.js';
import { waitFor } from '../../helpers/wait.js';

const setup = useHttpSetup();

/**
 * The server side of the next request for `url` that a node:http server other than `except`
 * receives in this process (node:http's 'http.server.request.start' diagnostics channel).
 */
function nextServerResponse(url: string, except: http.Server): Promise<http.ServerResponse> {
  return new Promise((resolve) => {
    const onStart = (message: unknown): void => {
      const { request: req, response, server } = message as { request: http.IncomingMessage; response: http.ServerResponse; server: http.Server };
      if (req.url !== url || server === except) return;
      diagnostics.unsubscribe('http.server.request.start', onStart);
      resolve(response);
    };
    diagnostics.subscribe('http.server.request.start', onStart);
  });
}

describe('http listener: pass-through, streaming and errors', () => {
  it('passes WebSocket upgrades through (echo)', async () => {
    const { origin, base } = await setup((_req, res) => res.end('plain'));
    const wss = new WebSocketServer({ server: origin.server });
    wss.on('connection', (socket) => socket.on('message', (data) => socket.send(`echo ${String(data)}`)));
    const client = new WebSocket(`${base.replace('http', 'ws')}/socket`);
    await new Promise((resolve, reject) => client.once('open', resolve).once('error', reject));
    const reply = new Promise<string>((resolve) => client.once('message', (data) => resolve(String(data))));
    client.send('hello');
    expect(await reply).toBe('echo hello');
    client.close();
    wss.close();
  });

  it('routes with cache: false pass through untouched, every time', async () => {
    const { origin, base } = await setup(counting(), '    rules:\n      - { path: "/health", cache: false }\n');
    const first = await fetch(`${base}/health`);
    expect(first.headers.get('cache-status')).toBe('sidecache; fwd=bypass');
    expect(await first.text()).toBe('call 1');
    expect(await (await fetch(`${base}/health`)).text()).toBe('call 2');
    expect(origin.calls('/health')).toBe(2);
  });

  it('streams a body larger than maxEntryBytes as it arrives and does not store it', async () => {
    let finish: () => void = () => {};
    const { origin, base } = await setup(
      (req, res) => {
        const big = Buffer.alloc(256 * 1024, 'a');
        const sized = req.url === '/sized';
        res.writeHead(200, { 'cache-control': 'max-age=60', ...(sized && { 'content-length': String(big.length * 2) }) });
        res.write(big);
        finish = () => res.end(big);
      },
      '',
      'cache: { maxEntryBytes: 64KiB }\n',
    );
    for (const path of ['/sized', '/chunked']) {
      const received = await new Promise<{ early: number; total: number; status: string }>((resolve, reject) => {
        http
          .get(`${base}${path}`, (res) => {
            let total = 0;
            let early = 0;
            res.on('data', (chunk: Buffer) => {
              total += chunk.length;
              if (early === 0 && total >= 256 * 1024) {
                early = total;
                finish();
              }
            });
            res.on('end', () => resolve({ early, total, status: String(res.headers['cache-status']) }));
          })
          .on('error', reject);
      });
      // The first half reached the client before the origin sent the second.
      expect(received.early).toBeGreaterThanOrEqual(256 * 1024);
      expect(received.total).toBe(512 * 1024);
      if (path === '/sized') expect(received.status).toBe('sidecache; fwd=uri-miss; detail=too-large');
    }
    const again = fetch(`${base}/chunked`);
    await waitFor(() => origin.calls('/chunked') === 2, 'the second request to reach the origin');
    finish();
    expect((await (await again).arrayBuffer()).byteLength).toBe(512 * 1024);
    expect(origin.calls('/chunked')).toBe(2);
  });

  it('answers 502 when the upstream refuses and 504 when it does not answer in time, and keeps serving', async () => {
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const refused = await startSidecache(httpListenerYaml(`http://127.0.0.1:${port}`));
    try {
      const res = await fetch(`${refused.httpListeners[0]!.url}/x`);
      expect(res.status).toBe(502);
      expect(res.headers.get('cache-status')).toBe('sidecache; fwd=uri-miss; detail=UPSTREAM-CONNECT');
      expect(await res.text()).toMatch(/cannot connect to the upstream \(ECONNREFUSED\)/);
      const post = await fetch(`${refused.httpListeners[0]!.url}/x`, { method: 'POST', body: 'x' });
      expect([post.status, post.headers.get('cache-status')]).toEqual([502, 'sidecache; fwd=method; detail=UPSTREAM-CONNECT']);
    } finally {
      await refused.stop(100);
    }
    const { base } = await setup((req, res) => {
      if (req.url === '/ok') res.end('fine');
    }, '    headersTimeout: 300ms\n');
    const slow = await fetch(`${base}/hang`);
    expect(slow.status).toBe(504);
    expect(slow.headers.get('cache-status')).toBe('sidecache; fwd=uri-miss; detail=UPSTREAM-TIMEOUT');
    expect(await (await fetch(`${base}/ok`)).text()).toBe('fine');
  });

  it('answers malformed and oversized requests with the standard 4xx, on that connection only', async () => {
    const { base } = await setup((_req, res) => res.end('ok'));
    const { port } = new URL(base);
    const raw = (text: string) =>
      new Promise<string>((resolve) => {
        const socket = net.connect(Number(port), '127.0.0.1', () => socket.write(text));
        let out = '';
        socket.on('data', (d) => (out += d.toString('latin1')));
        socket.on('close', () => resolve(out));
        socket.on('error', () => resolve(out));
      });
    expect(await raw('NOT HTTP AT ALL\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 Bad Request/);
    expect(await raw(`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)).toMatch(/^HTTP\/1\.1 431 /);
    expect((await request(`${base}/still`)).body).toBe('ok');
  });

  it('counts what the test did in the metrics', async () => {
    const { server, base } = await setup((req, res) => {
      if (req.url === '/boom') return req.socket.destroy();
      res.writeHead(200, { 'cache-control': 'max-age=60' });
      res.end('x');
    }, '    rules:\n      - { path: "/pass", cache: false }\n');
    await fetch(`${base}/a`);
    await fetch(`${base}/a`);
    await fetch(`${base}/a`);
    await fetch(`${base}/b`);
    await fetch(`${base}/pass`);
    await fetch(`${base}/a`, { method: 'POST', body: 'x' });
    await fetch(`${base}/boom`);
    const reported = async () => {
      let total = 0;
      for (const result of ['hit', 'miss', 'stale', 'bypass', 'error'])
        total += await metric(server, 'sidecache_requests_total', { protocol: 'http', listener: 'api', result });
      return total;
    };
    await waitFor(async () => (await reported()) === 7, 'all seven requests to be reported');
    const text = await (await fetch(`${server.adminUrl}/metrics`)).text();
    const count = (result: string) => sample(text, 'sidecache_requests_total', { protocol: 'http', listener: 'api', result });
    expect({ hit: count('hit'), miss: count('miss'), bypass: count('bypass'), error: count('error') }).toEqual({ hit: 2, miss: 2, bypass: 2, error: 1 });
    expect(sample(text, 'sidecache_request_duration_seconds_count', { protocol: 'http', listener: 'api', result: 'hit' })).toBe(2);
    // Pass-through routes go through the same pool and are timed like the rest (/a, /b, /pass, the POST).
    expect(sample(text, 'sidecache_upstream_duration_seconds_count', { protocol: 'http', listener: 'api' })).toBe(4);
    expect(sample(text, 'sidecache_invalidations_total', { source: 'http:api' })).toBe(1);
    expect(sample(text, 'sidecache_cache_entries')).toBe(1);
  });
});

describe('http listener: request bodies and departing clients', () => {
  it('forwards a POST sent with Expect: 100-continue, body intact', async () => {
    const { origin, base } = await setup((_req, res, _n, body) => res.end(`got ${body.length}`));
    const body = 'x'.repeat(200_000);
    const res = await request(`${base}/upload`, { method: 'POST', headers: { expect: '100-continue', 'content-length': String(body.length) }, body });
    expect([res.status, res.body]).toEqual([200, 'got 200000']);
    expect(origin.seen[0]!.headers.expect).toBeUndefined();
  });

  it('answers a Range request from the whole representation, fetched once and stored', async () => {
    const { origin, base } = await setup((req, res) => {
      // The fill asks for the whole representation: no Range reaches the origin.
      res.writeHead(req.headers.range ? 206 : 200, { 'cache-control': 'max-age=60' });
      res.end('part of it');
    });
    const res = await request(`${base}/r`, { headers: { range: 'bytes=0-3' } });
    expect([res.status, res.headers['content-range'], res.body]).toEqual([206, 'bytes 0-3/10', 'part']);
    const again = await request(`${base}/r`, { headers: { range: 'bytes=5-' } });
    expect([again.status, again.body]).toEqual([206, 'of it']);
    expect(origin.calls('/r')).toBe(1);
  });

  it('a leader whose client leaves keeps the upstream request while another request waits on it', async () => {
    let finish: () => void = () => {};
    const { origin, server, base } = await setup((_req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=60' });
      res.write('first half ');
      finish = () => res.end('second half');
    });
    const controller = new AbortController();
    const leaderAtSidecache = nextServerResponse('/shared', origin.server);
    const leader = await fetch(`${base}/shared`, { signal: controller.signal });
    const leaderLeft = once(await leaderAtSidecache, 'close');
    const waiter = fetch(`${base}/shared`).then((r) => r.text());
    await waitFor(async () => (await metric(server, 'sidecache_coalesced_total', { protocol: 'http', listener: 'api' })) === 1, 'the waiter to join the fill');
    controller.abort();
    // sidecache has seen its leader's client go before the origin sends the rest.
    await leaderLeft;
    finish();
    expect(await waiter).toBe('first half second half');
    expect(leader.status).toBe(200);
    expect(origin.calls('/shared')).toBe(1);
    expect((await fetch(`${base}/shared`)).headers.get('cache-status')).toMatch(/hit/);
  });
});

describe('http listener: other Upgrade protocols', () => {
  it('tunnels a non-WebSocket upgrade (101) both ways when upgradeProtocols allows it', async () => {
    const { origin, base } = await setup((_req, res) => res.end('plain'), '    upgradeProtocols: [websocket, echo]\n');
    origin.server.on('upgrade', (req, socket) => {
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\nX-Seen-Host: ${req.headers.host}\r\n\r\n`);
      socket.on('data', (d: Buffer) => socket.write(`echo:${d.toString()}`));
      // node:http hands over upgraded sockets half-open: close this side when the peer does.
      socket.on('end', () => socket.end());
    });
    const { port } = new URL(base);
    const net = await import('node:net');
    const socket = net.connect(Number(port), '127.0.0.1');
    try {
      const received: string[] = [];
      socket.on('data', (d) => received.push(d.toString()));
      socket.write('GET /chat HTTP/1.1\r\nHost: example\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
      await waitFor(() => received.join('').includes('\r\n\r\n'), 'the upgrade answer');
      expect(received.join('')).toMatch(/^HTTP\/1\.1 101 Switching Protocols\r\n/);
      expect(received.join('').toLowerCase()).toContain(`x-seen-host: 127.0.0.1:${origin.port}`);
      socket.write('ping');
      await waitFor(() => received.join('').includes('echo:'), 'the echo through the tunnel');
      expect(received.join('')).toContain('echo:ping');
    } finally {
      socket.destroy();
    }
  });
});

describe('http listener: stopping with open upgraded connections', () => {
  it('ends WebSocket connections at the grace deadline instead of waiting for them forever', async () => {
    const { origin, server, base } = await setup((_req, res) => res.end('plain'));
    const wss = new WebSocketServer({ server: origin.server });
    const client = new WebSocket(`${base.replace('http', 'ws')}/socket`);
    await new Promise((resolve, reject) => client.once('open', resolve).once('error', reject));
    const closed = new Promise((resolve) => client.once('close', resolve));
    // A stop that waited for the socket forever would not return (and the test would time out).
    expect(await server.stop(200)).toEqual({ forced: true });
    await closed;
    for (const peer of wss.clients) peer.terminate();
    wss.close();
  });
});
