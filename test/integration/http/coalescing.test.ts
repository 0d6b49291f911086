import { describe, expect, it } from 'vitest';
import { sample } from '../../helpers/sidecache.js';
import { sleep, useHttpSetup } from '../../helpers/http-setup.js';

const setup = useHttpSetup();

describe('http read-through: coalescing', () => {
  it('100 concurrent identical misses make one origin call', async () => {
    const { origin, server, base } = await setup((_req, res, n) => {
      setTimeout(() => {
        res.writeHead(200, { 'cache-control': 'max-age=60' });
        res.end(`call ${n}`);
      }, 100);
    });
    const answers = await Promise.all(Array.from({ length: 100 }, () => fetch(`${base}/hot`)));
    const bodies = await Promise.all(answers.map((r) => r.text()));
    expect(new Set(bodies)).toEqual(new Set(['call 1']));
    expect(origin.calls('/hot')).toBe(1);
    const collapsed = answers.filter((r) => r.headers.get('cache-status')?.includes('collapsed')).length;
    expect(collapsed).toBe(99);
    const text = await (await fetch(`${server.adminUrl}/metrics`)).text();
    expect(sample(text, 'sidecache_coalesced_total', { protocol: 'http', listener: 'api' })).toBe(99);
  });

  it('a private response under concurrency reaches only its own requester; the key then skips coalescing', async () => {
    const { origin, base } = await setup((req, res, n) => {
      setTimeout(() => {
        res.writeHead(200, { 'cache-control': 'private, max-age=60' });
        res.end(`for ${req.headers['x-user']} call ${n}`);
      }, 100);
    });
    const users = Array.from({ length: 20 }, (_, i) => `u${i}`);
    const bodies = await Promise.all(users.map((u) => fetch(`${base}/me`, { headers: { 'x-user': u } }).then((r) => r.text())));
    bodies.forEach((body, i) => expect(body).toMatch(new RegExp(`^for u${i} call \\d+$`)));
    expect(origin.calls('/me')).toBe(20);
    // Hit-for-miss: later requests go upstream side by side, not one after another.
    const started = Date.now();
    await Promise.all(users.map((u) => fetch(`${base}/me`, { headers: { 'x-user': u } })));
    expect(Date.now() - started).toBeLessThan(1000);
    const last = await fetch(`${base}/me`, { headers: { 'x-user': 'z' } });
    expect(last.headers.get('cache-status')).toBe('sidecache; fwd=miss; detail=private');
  });

  it('waiters whose Vary values differ from the response they waited on go upstream themselves', async () => {
    const { origin, base } = await setup((req, res, n) => {
      setTimeout(() => {
        res.writeHead(200, { 'cache-control': 'max-age=60', vary: 'accept-language' });
        res.end(`${req.headers['accept-language']} ${n}`);
      }, 100);
    });
    const langs = ['en', 'fr', 'en', 'de', 'fr'];
    const bodies = await Promise.all(langs.map((l) => fetch(`${base}/v`, { headers: { 'accept-language': l } }).then((r) => r.text())));
    bodies.forEach((body, i) => expect(body.split(' ')[0]).toBe(langs[i]));
    await sleep(10);
    for (const l of ['en', 'fr', 'de']) {
      const hit = await fetch(`${base}/v`, { headers: { 'accept-language': l } });
      expect(hit.headers.get('cache-status')).toMatch(/hit/);
    }
    expect(origin.calls('/v')).toBeLessThanOrEqual(4);
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
    await sleep(200);
    expect(aborted).toBe(true);
  });
});
