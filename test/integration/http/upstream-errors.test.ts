/**
 * Issue 16 point 9: an HTTP origin that fails is visible (sidecache_upstream_errors_total
 * {protocol="http",listener,reason}, and a warning at most once per reason every 10 s), and a query
 * string, which may carry credentials (`?api_key=…`), never reaches a log line at any level.
 */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { Logger } from '../../../src/log.js';
import { SidecacheServer } from '../../../src/server.js';
import { metric } from '../../helpers/sidecache.js';
import { rawRequest } from '../../helpers/raw-http.js';
import { waitFor } from '../../helpers/wait.js';

/** A loopback port nothing listens on: bound, then closed. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('http listener: upstream failures', () => {
  it('counts each failed request, warns once per reason, and logs no query string', async () => {
    const lines: string[] = [];
    const log = new Logger({ level: 'debug', sink: (line) => lines.push(line) });
    const dead = await closedPort();
    const yaml =
      `admin: { listen: "127.0.0.1:0" }\nhttp:\n  - name: api\n    listen: "127.0.0.1:0"\n    upstream: "http://127.0.0.1:${dead}"\n` +
      `    rules: [{ path: "/private/**", cache: false }]\n`;
    const server = new SidecacheServer(parseConfig(yaml, 'test.yaml', {}), { log });
    await server.start();
    try {
      const base = server.httpListeners[0]!.url;
      // Every path a request takes upstream: a fill, an unsafe method, a pass-through route.
      const answers = await Promise.all([
        fetch(`${base}/users?api_key=SECRET1`),
        fetch(`${base}/users?api_key=SECRET2`, { method: 'POST', body: 'x' }),
        fetch(`${base}/private/me?api_key=SECRET3`),
      ]);
      for (const res of answers) {
        expect(res.status).toBe(502);
        expect(res.headers.get('cache-status')).toMatch(/detail=UPSTREAM-CONNECT/);
        await res.text();
      }
      // A WebSocket handshake goes through the same pool, and its failure is counted the same way.
      const upgrade = await rawRequest(base, 'GET /ws?api_key=SECRET4 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
      expect(upgrade).toMatch(/^HTTP\/1\.1 502 /);
      expect(await metric(server, 'sidecache_upstream_errors_total', { protocol: 'http', listener: 'api', reason: 'connect' })).toBe(4);
      const warnings = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.level === 'warn' && l.msg === 'upstream request failed');
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatchObject({ reason: 'connect', listener: 'api' });
      expect(lines.length).toBeGreaterThan(1);
      for (const line of lines) expect(line).not.toMatch(/SECRET|api_key/);
    } finally {
      await server.stop(100);
    }
  });

  it('counts a response that fails after its headers (the origin resets mid-body), on a fill and on a pass-through', async () => {
    // Headers that promise 1,000 bytes, ten of them, then the connection is reset.
    const origin = net.createServer((socket) => {
      socket.once('data', () => {
        socket.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncache-control: max-age=60\r\ncontent-length: 1000\r\n\r\n0123456789');
        setTimeout(() => socket.resetAndDestroy(), 20);
      });
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
    const port = (origin.address() as net.AddressInfo).port;
    const yaml = `admin: { listen: "127.0.0.1:0" }\nhttp:\n  - name: api\n    listen: "127.0.0.1:0"\n    upstream: "http://127.0.0.1:${port}"\n`;
    const server = new SidecacheServer(parseConfig(yaml, 'test.yaml', {}), { log: new Logger({ level: 'silent' }) });
    await server.start();
    try {
      const base = server.httpListeners[0]!.url;
      const resets = () => metric(server, 'sidecache_upstream_errors_total', { protocol: 'http', listener: 'api', reason: 'reset' });
      for (const init of [{}, { method: 'POST', body: 'x' }]) {
        const before = await resets();
        const res = await fetch(`${base}/doc`, init);
        expect(res.status).toBe(200);
        await expect(res.text()).rejects.toThrow();
        await waitFor(async () => (await resets()) === before + 1, 'the mid-body reset to be counted');
      }
    } finally {
      await server.stop(100);
      origin.close();
    }
  });
});
