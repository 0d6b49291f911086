import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { counting, useHttpSetup } from '../../helpers/http-setup.js';
import { waitFor } from '../../helpers/wait.js';
import { RawConnection, send } from './raw.js';

const setup = useHttpSetup();

const H2C = 'Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n';

/** A WebSocket handshake that is not switched: the first answer, and all that came before the connection closed. */
async function refusedHandshake(base: string): Promise<{ first: string; received: string }> {
  const conn = new RawConnection(base);
  try {
    conn.write(
      'GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    const [first] = await conn.responses(1);
    await waitFor(() => conn.closed, 'the connection to close');
    return { first: first!, received: conn.received };
  } finally {
    conn.destroy();
  }
}

describe('http listener: Upgrade requests the origin does not switch, or that are not allowed', () => {
  it('an h2c upgrade answered normally leaves the connection parsed as HTTP (no tunnel, no smuggling)', async () => {
    const { origin, base } = await setup(counting(), '    rules:\n      - { path: "/private/**", cache: false }\n');
    const conn = new RawConnection(base);
    try {
      conn.write(`GET /a HTTP/1.1\r\nHost: x\r\n${H2C}\r\n`);
      const [first] = await conn.responses(1);
      expect(first).toMatch(/^HTTP\/1\.1 200 /);
      expect(first).toMatch(/cache-status: sidecache; fwd=uri-miss/i);
      // A second request on the same connection goes through sidecache, not raw to the origin.
      conn.write('GET /b HTTP/1.1\r\nHost: x\r\nX-HTTP-Method-Override: DELETE\r\n\r\n');
      const [, second] = await conn.responses(2);
      expect(second).toMatch(/cache-status: sidecache; fwd=uri-miss/i);
      expect(origin.seen.map((s) => s.url)).toEqual(['/a', '/b']);
      expect(origin.seen[0]!.headers.upgrade).toBeUndefined();
      expect(origin.seen[1]!.headers.via).toBe('1.1 sidecache');
      expect(origin.seen[1]!.headers['x-http-method-override']).toBeUndefined();
    } finally {
      conn.destroy();
    }
  });

  it('the same bytes pipelined after the upgrade request are parsed as HTTP too', async () => {
    const { origin, base } = await setup(counting());
    const conn = new RawConnection(base);
    try {
      conn.write(`GET /a HTTP/1.1\r\nHost: x\r\n${H2C}\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n`);
      const [first, second] = await conn.responses(2);
      expect(first).toMatch(/cache-status/i);
      expect(second).toMatch(/cache-status/i);
      expect(origin.seen.map((s) => [s.url, s.headers.via])).toEqual([
        ['/a', '1.1 sidecache'],
        ['/b', '1.1 sidecache'],
      ]);
    } finally {
      conn.destroy();
    }
  });

  it('an h2c upgrade with a body is answered as a plain request, body intact, and the next request is parsed', async () => {
    const { origin, base } = await setup((_req, res, n, body) => res.end(`call ${n}: ${body}`));
    const conn = new RawConnection(base);
    try {
      conn.write(`POST /w HTTP/1.1\r\nHost: x\r\n${H2C}Content-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nHost: x\r\n\r\n`);
      const [first, second] = await conn.responses(2);
      expect(first).toMatch(/\r\n\r\ncall 1: hello$/);
      expect(second).toMatch(/cache-status/i);
      // node:http answers pipelined requests in order, but may forward them concurrently.
      const seen = origin.seen.map((s) => [s.method, s.url, s.body, s.headers.via, s.headers.upgrade]);
      expect(seen.sort()).toEqual([
        ['GET', '/b', '', '1.1 sidecache', undefined],
        ['POST', '/w', 'hello', '1.1 sidecache', undefined],
      ]);
    } finally {
      conn.destroy();
    }
  });

  it('a WebSocket handshake to an upstream that is down gets a 502 from sidecache', async () => {
    const { origin, base } = await setup(counting());
    await origin.close();
    const { first } = await refusedHandshake(base);
    expect(first).toMatch(/^HTTP\/1\.1 502 /);
    expect(first).toMatch(/cache-status: sidecache; fwd=bypass; detail=UPSTREAM-CONNECT/);
  });

  it('a protocol outside upgradeProtocols is not tunnelled even when the origin would switch', async () => {
    const { origin, base } = await setup(counting());
    let switched = 0;
    origin.server.on('upgrade', (_req, socket) => {
      switched++;
      socket.end('HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n');
    });
    const conn = new RawConnection(base);
    try {
      conn.write('GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
      const [first] = await conn.responses(1);
      expect(first).toMatch(/^HTTP\/1\.1 200 /);
      expect(switched).toBe(0);
      expect(origin.calls('/chat')).toBe(1);
    } finally {
      conn.destroy();
    }
  });

  it('a WebSocket handshake the origin refuses reaches the client, and the connection is not tunnelled', async () => {
    const { origin, base } = await setup(counting());
    origin.server.on('upgrade', (_req, socket) => socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno'));
    const { first, received } = await refusedHandshake(base);
    expect(first).toMatch(/^HTTP\/1\.1 403 /);
    expect(received).toMatch(/\r\n\r\nno$/);
  });
});

describe('http listener: one forwarding path (forwardedHeaders, stripping) for pass-through and upgrades', () => {
  it('forwardedHeaders: replace holds on cache: false routes', async () => {
    const { origin, base } = await setup(counting(), '    forwardedHeaders: replace\n    rules:\n      - { path: "/through", cache: false }\n');
    const res = await send(base, '/through', { headers: { 'x-forwarded-for': '6.6.6.6', 'x-http-method-override': 'DELETE' } });
    expect(res.headers['cache-status']).toBe('sidecache; fwd=bypass');
    expect(origin.seen[0]!.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(origin.seen[0]!.headers['x-http-method-override']).toBeUndefined();
    expect(origin.seen[0]!.headers.via).toBe('1.1 sidecache');
  });

  it('forwardedHeaders: replace holds on WebSocket upgrades', async () => {
    const { origin, base } = await setup((_req, res) => res.end('plain'), '    forwardedHeaders: replace\n');
    const wss = new WebSocketServer({ server: origin.server });
    let seen: IncomingMessage | undefined;
    wss.on('connection', (socket, req) => {
      seen = req;
      socket.on('message', (data) => socket.send(`echo ${String(data)}`));
    });
    const client = new WebSocket(`${base.replace('http', 'ws')}/socket`, { headers: { 'x-forwarded-for': '6.6.6.6', 'x-original-url': '/admin' } });
    await new Promise((resolve, reject) => client.once('open', resolve).once('error', reject));
    const reply = new Promise<string>((resolve) => client.once('message', (data) => resolve(String(data))));
    client.send('hello');
    expect(await reply).toBe('echo hello');
    expect(seen?.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen?.headers['x-original-url']).toBeUndefined();
    expect(seen?.url).toBe('/socket');
    client.close();
    wss.close();
  });
});
