import { describe, expect, it } from 'vitest';
import { metric } from '../../helpers/sidecache.js';
import { useHttpSetup } from '../../helpers/http-setup.js';
import { gate, waitFor } from '../../helpers/wait.js';

const setup = useHttpSetup();
const labels = { protocol: 'http', listener: 'api' };

describe('http read-through: coalescing', () => {
  it('100 concurrent identical misses make one origin call', async () => {
    const held = gate();
    const { origin, server, base } = await setup((_req, res, n) => {
      void held.promise.then(() => {
        res.writeHead(200, { 'cache-control': 'max-age=60' });
        res.end(`call ${n}`);
      });
    });
    const pending = Promise.all(Array.from({ length: 100 }, () => fetch(`${base}/hot`)));
    // The origin holds its answer until every request is in: at the origin, or waiting on the one that is.
    await waitFor(async () => origin.calls('/hot') + (await metric(server, 'sidecache_coalesced_total', labels)) === 100, 'all 100 requests to arrive');
    held.release();
    const answers = await pending;
    const bodies = await Promise.all(answers.map((r) => r.text()));
    expect(new Set(bodies)).toEqual(new Set(['call 1']));
    expect(origin.calls('/hot')).toBe(1);
    const collapsed = answers.filter((r) => r.headers.get('cache-status')?.includes('collapsed')).length;
    expect(collapsed).toBe(99);
    expect(await metric(server, 'sidecache_coalesced_total', labels)).toBe(99);
  });

  it('a private response under concurrency reaches only its own requester; the key then skips coalescing', async () => {
    let held = gate();
    const { origin, server, base } = await setup((req, res, n) => {
      void held.promise.then(() => {
        res.writeHead(200, { 'cache-control': 'private, max-age=60' });
        res.end(`for ${req.headers['x-user']} call ${n}`);
      });
    });
    const coalesced = () => metric(server, 'sidecache_coalesced_total', labels);
    const users = Array.from({ length: 20 }, (_, i) => `u${i}`);
    const first = Promise.all(users.map((u) => fetch(`${base}/me`, { headers: { 'x-user': u } }).then((r) => r.text())));
    // All 20 are in before the first answer: one at the origin, the others waiting on it.
    await waitFor(async () => origin.calls('/me') + (await coalesced()) === 20, 'all 20 requests to arrive');
    held.release();
    const bodies = await first;
    bodies.forEach((body, i) => expect(body).toMatch(new RegExp(`^for u${i} call \\d+$`)));
    expect(origin.calls('/me')).toBe(20);
    // Hit-for-miss: later requests go upstream side by side, not one after another. The origin
    // answers none until all 20 have reached it, and none of them waited on another.
    held = gate();
    const waitedBefore = await coalesced();
    const second = Promise.all(users.map((u) => fetch(`${base}/me`, { headers: { 'x-user': u } })));
    await waitFor(() => origin.calls('/me') === 40, 'the 20 requests to reach the origin together');
    held.release();
    expect((await second).map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(await coalesced()).toBe(waitedBefore);
    const last = await fetch(`${base}/me`, { headers: { 'x-user': 'z' } });
    expect(last.headers.get('cache-status')).toBe('sidecache; fwd=miss; detail=private');
  });

  it('waiters whose Vary values differ from the response they waited on go upstream themselves', async () => {
    const held = gate();
    const { origin, server, base } = await setup((req, res, n) => {
      void held.promise.then(() => {
        res.writeHead(200, { 'cache-control': 'max-age=60', vary: 'accept-language' });
        res.end(`${req.headers['accept-language']} ${n}`);
      });
    });
    const langs = ['en', 'fr', 'en', 'de', 'fr'];
    const get = (l: string) => fetch(`${base}/v`, { headers: { 'accept-language': l } }).then((r) => r.text());
    // 'en' leads: its request is at the origin before the others are sent, and they all wait on it.
    const leader = get(langs[0]!);
    await waitFor(() => origin.calls('/v') === 1, 'the leader at the origin');
    const waiters = langs.slice(1).map(get);
    await waitFor(async () => (await metric(server, 'sidecache_coalesced_total', labels)) === 4, 'four waiters on the leader');
    held.release();
    const bodies = await Promise.all([leader, ...waiters]);
    bodies.forEach((body, i) => expect(body.split(' ')[0]).toBe(langs[i]));
    // The other 'en' shared the leader's answer; fr, de and fr asked for themselves.
    expect(origin.calls('/v')).toBe(4);
    await waitFor(() => server.store.size === 3, 'the en, fr and de variants to be stored');
    for (const l of ['en', 'fr', 'de']) {
      const hit = await fetch(`${base}/v`, { headers: { 'accept-language': l } });
      expect(hit.headers.get('cache-status')).toMatch(/hit/);
    }
    expect(origin.calls('/v')).toBe(4);
  });

  it('a leader whose client leaves does not keep the upstream request running alone', async () => {
    let aborted = false;
    const { base } = await setup((req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=60' });
      res.write('partial');
      req.socket.on('close', () => (aborted = true));
    });
    const controller = new AbortController();
    const res = await fetch(`${base}/slow`, { signal: controller.signal });
    expect(res.status).toBe(200);
    controller.abort();
    await waitFor(() => aborted, 'the upstream request to be closed');
  });
});
