import { describe, expect, it } from 'vitest';
import { useHttpSetup } from '../../helpers/http-setup.js';
import { gate, waitFor } from '../../helpers/wait.js';

// Time moves only by clock.advance(): sidecache and the origin's Date header share the clock.
const setup = useHttpSetup({ manualClock: true });

describe('http read-through: stale serving', () => {
  it('stale-while-revalidate serves stale at once and refreshes once in the background', async () => {
    const refresh = gate();
    const { origin, server, base, clock } = await setup((_req, res, n) => {
      const send = () => {
        res.writeHead(200, { 'cache-control': 'max-age=1, stale-while-revalidate=30' });
        res.end(`v${n}`);
      };
      if (n === 2) void refresh.promise.then(send);
      else send();
    });
    await fetch(`${base}/swr`);
    clock.advance(1100);
    const stale = await Promise.all([1, 2, 3, 4, 5].map(() => fetch(`${base}/swr`)));
    for (const res of stale) {
      expect(await res.text()).toBe('v1');
      expect(res.headers.get('cache-status')).toMatch(/^sidecache; hit; ttl=-\d+; detail=STALE-WHILE-REVALIDATE$/);
    }
    // The refresh began with the first stale answer and is held at the origin until now.
    expect(server.store.inFlight).toBe(1);
    refresh.release();
    await waitFor(() => server.store.inFlight === 0, 'the background refresh to be stored');
    expect(origin.calls('/swr')).toBe(2);
    const fresh = await fetch(`${base}/swr`);
    expect(await fresh.text()).toBe('v2');
    expect(fresh.headers.get('cache-status')).toMatch(/^sidecache; hit/);
  });

  it('the listener staleWhileRevalidate applies when the response states none', async () => {
    const { origin, server, base, clock } = await setup((_req, res, n) => {
      res.writeHead(200, { 'cache-control': 'max-age=1' });
      res.end(`v${n}`);
    }, '    staleWhileRevalidate: 30s\n');
    await fetch(`${base}/x`);
    clock.advance(1100);
    expect(await (await fetch(`${base}/x`)).text()).toBe('v1');
    await waitFor(() => server.store.inFlight === 0, 'the background refresh to finish');
    expect(origin.calls('/x')).toBe(2);
  });

  it('stale-if-error serves stale when the origin answers 5xx, fails or is down', async () => {
    let mode: 'ok' | '503' | 'reset' = 'ok';
    const { origin, base, clock } = await setup((req, res, n) => {
      if (mode === '503') {
        res.writeHead(503, { 'content-type': 'text/plain' });
        return res.end('down');
      }
      if (mode === 'reset') return req.socket.destroy();
      res.writeHead(200, { 'cache-control': 'max-age=1, stale-if-error=60' });
      res.end(`v${n}`);
    });
    await fetch(`${base}/sie`);
    clock.advance(1100);
    mode = '503';
    const on503 = await fetch(`${base}/sie`);
    expect([on503.status, await on503.text()]).toEqual([200, 'v1']);
    expect(on503.headers.get('cache-status')).toMatch(/^sidecache; fwd=stale; fwd-status=503; ttl=-\d+; detail=STALE-IF-ERROR$/);
    mode = 'reset';
    const onReset = await fetch(`${base}/sie`);
    expect([onReset.status, await onReset.text()]).toEqual([200, 'v1']);
    await origin.close();
    const onDown = await fetch(`${base}/sie`);
    expect([onDown.status, await onDown.text()]).toEqual([200, 'v1']);
    expect(onDown.headers.get('cache-status')).toContain('detail=STALE-IF-ERROR');
  });

  it('stale-if-error answers at once when the 5xx declares a large body that has not come (its body is not waited for)', async () => {
    const body = gate();
    const { base, clock } = await setup((_req, res, n) => {
      if (n === 1) {
        res.writeHead(200, { 'cache-control': 'max-age=1, stale-if-error=60' });
        return res.end('good');
      }
      // 1 MiB declared; the head goes now, the body only once the test lets it.
      res.writeHead(500, { 'content-length': String(1 << 20) });
      res.flushHeaders();
      void body.promise.then(() => res.end(Buffer.alloc(1 << 20)));
    });
    await fetch(`${base}/big-error`);
    clock.advance(1100);
    const stale = await fetch(`${base}/big-error`);
    expect([stale.status, await stale.text(), body.released]).toEqual([200, 'good', false]);
    expect(stale.headers.get('cache-status')).toMatch(/fwd-status=500; .*detail=STALE-IF-ERROR$/);
    body.release();
  });

  it('without stale-if-error a 5xx passes through unchanged and must-revalidate forbids stale', async () => {
    let fail = false;
    const { base, clock } = await setup((req, res, n) => {
      if (fail) {
        res.writeHead(500, { 'x-origin': 'yes' });
        return res.end('origin error');
      }
      res.writeHead(200, { 'cache-control': req.url === '/strict' ? 'max-age=1, must-revalidate, stale-if-error=60' : 'max-age=1' });
      res.end(`v${n}`);
    }, '    staleIfError: 60s\n');
    await fetch(`${base}/strict`);
    clock.advance(1100);
    fail = true;
    const strict = await fetch(`${base}/strict`);
    expect([strict.status, await strict.text(), strict.headers.get('x-origin')]).toEqual([500, 'origin error', 'yes']);
    // The listener's staleIfError covers a response that says nothing.
    fail = false;
    await fetch(`${base}/lenient`);
    clock.advance(1100);
    fail = true;
    expect(await (await fetch(`${base}/lenient`)).text()).toBe('v1');
  });
});
