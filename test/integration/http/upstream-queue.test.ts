/**
 * Issue 16 point 8: the wait for one of the listener's upstream connections is bounded. It counts
 * within headersTimeout (undici's own starts only once a connection takes the request, so with
 * every connection held a request could wait for ever), and a full queue (`maxQueued`) is answered
 * 503 with Retry-After at once (RFC 9110 §15.6.4, §10.2.3); neither reaches the origin.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { useHttpSetup } from '../../helpers/http-setup.js';
import { metric } from '../../helpers/sidecache.js';
import { rawRequest } from '../../helpers/raw-http.js';
import { gate, waitFor } from '../../helpers/wait.js';
import type { OriginHandler } from '../../helpers/origin.js';

const setup = useHttpSetup();
let held = gate();
beforeEach(() => void (held = gate()));
afterEach(() => held.release());

/** `/busy…` answers its head at once and holds its body until `held` opens: the connection stays taken. */
const holding: OriginHandler = (req, res) => {
  res.writeHead(200, { 'cache-control': 'no-store', 'content-type': 'text/plain' });
  if (req.url?.startsWith('/busy') === true) {
    res.write('started');
    void held.promise.then(() => res.end(' ended'));
  } else res.end(`answered ${req.url}`);
};

describe('http listener: the wait for an upstream connection', () => {
  it('answers 504 at headersTimeout to requests still queued for a connection, and never sends them', async () => {
    const { origin, server, base } = await setup(holding, '    connections: 2\n    headersTimeout: 300ms\n');
    const busy = await Promise.all(['/busy1', '/busy2'].map((p) => fetch(`${base}${p}`)));
    expect(busy.map((r) => r.status)).toEqual([200, 200]);
    const queued = await Promise.all(['/q1', '/q2', '/q3'].map((p) => fetch(`${base}${p}`)));
    for (const res of queued) {
      expect(res.status).toBe(504);
      expect(res.headers.get('cache-status')).toMatch(/detail=UPSTREAM-TIMEOUT/);
      await res.text();
    }
    expect(await metric(server, 'sidecache_upstream_errors_total', { protocol: 'http', listener: 'api', reason: 'timeout' })).toBe(3);
    held.release();
    for (const res of busy) expect(await res.text()).toBe('started ended');
    // The queue is first in, first out: once a later request is answered, the timed-out ones have left it unsent.
    expect(await (await fetch(`${base}/after`)).text()).toBe('answered /after');
    expect(origin.seen.map((r) => r.url).sort()).toEqual(['/after', '/busy1', '/busy2']);
  });

  it('answers 503 with Retry-After at once when the queue is full', async () => {
    const { origin, server, base } = await setup(holding, '    connections: 1\n    maxQueued: 2\n');
    const busy = await fetch(`${base}/busy`);
    const waiting = ['/w1', '/w2'].map((p) => fetch(`${base}${p}`));
    const listener = server.httpListeners[0]!;
    await waitFor(() => listener.upstreamQueued === 2, 'two requests to queue');
    const refused = await fetch(`${base}/refused`);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(refused.headers.get('cache-status')).toMatch(/detail=UPSTREAM-QUEUE-FULL/);
    await refused.text();
    expect(await metric(server, 'sidecache_upstream_errors_total', { protocol: 'http', listener: 'api', reason: 'queue-full' })).toBe(1);
    // A WebSocket handshake waits in the same queue: refused the same way, at once.
    const upgrade = await rawRequest(base, 'GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
    expect(upgrade).toMatch(/^HTTP\/1\.1 503 [^]*detail=UPSTREAM-QUEUE-FULL/);
    expect(await metric(server, 'sidecache_upstream_errors_total', { protocol: 'http', listener: 'api', reason: 'queue-full' })).toBe(2);
    held.release();
    expect(await busy.text()).toBe('started ended');
    expect(await Promise.all(waiting.map(async (r) => (await r).text()))).toEqual(['answered /w1', 'answered /w2']);
    expect(origin.calls('/refused')).toBe(0);
  });
});
