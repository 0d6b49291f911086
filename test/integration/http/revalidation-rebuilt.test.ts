/**
 * Issue 14: entries no longer keep the http-cache-semantics policy they were stored with; a
 * revalidation rebuilds it from the stored status and fields (`storedPolicy`). These pin what the
 * kept policy decided: which 304 fits the stored response (strong, weak and Last-Modified
 * validators), the 304 merge, Vary variants and the Authorization rule (RFC 9111 §3.5, §4.3.4).
 */
import { describe, expect, it } from 'vitest';
import { useHttpSetup } from '../../helpers/http-setup.js';

// Time moves only by clock.advance(): sidecache and the origin's Date header share the clock.
const setup = useHttpSetup({ manualClock: true });

describe('http revalidation from the stored fields (issue 14)', () => {
  it('a weak validator matches a weak one and the 304 merges; a strong one that differs does not fit', async () => {
    const { origin, base, clock } = await setup((req, res, n) => {
      const inm = req.headers['if-none-match'];
      if (inm === 'W/"w1"') {
        res.writeHead(304, { etag: req.url === '/weak' ? 'W/"w1"' : '"other"', 'cache-control': 'max-age=60', 'x-version': `refreshed ${n}` });
        return res.end();
      }
      res.writeHead(200, { etag: 'W/"w1"', 'cache-control': 'max-age=1', 'x-version': 'first', 'x-stored': 'yes' });
      res.end(`body ${n}`);
    });
    await fetch(`${base}/weak`);
    await fetch(`${base}/strong`);
    clock.advance(1100);
    const weak = await fetch(`${base}/weak`);
    expect(await weak.text()).toBe('body 1');
    expect(weak.headers.get('x-version')).toBe('refreshed 2');
    expect(weak.headers.get('cache-status')).toBe('sidecache; fwd=stale; fwd-status=304; ttl=60; stored');
    expect(weak.headers.get('x-stored')).toBe('yes');
    const hit = await fetch(`${base}/weak`);
    expect(hit.headers.get('cache-status')).toMatch(/^sidecache; hit/);
    expect(hit.headers.get('x-version')).toBe('refreshed 2');
    // A 304 whose strong validator is not the stored one's does not fit it: it stands on its own
    // fields (as in the library), which replace the stored ones rather than update them.
    const strong = await fetch(`${base}/strong`);
    expect(await strong.text()).toBe('body 1');
    expect(strong.headers.get('cache-status')).toBe('sidecache; fwd=stale; fwd-status=304; ttl=60; stored');
    expect(strong.headers.get('x-version')).toBe('refreshed 2');
    expect(strong.headers.get('x-stored')).toBeNull();
    expect(strong.headers.get('etag')).toBe('"other"');
    expect(origin.calls('/weak')).toBe(2);
  });

  it('Last-Modified alone: If-Modified-Since goes upstream and a 304 with the same date merges', async () => {
    const lastModified = 'Tue, 31 Dec 2024 00:00:00 GMT';
    const { origin, base, clock } = await setup((req, res, n) => {
      if (req.headers['if-modified-since'] === lastModified) {
        res.writeHead(304, { 'last-modified': lastModified, 'cache-control': 'max-age=30', 'x-version': `refreshed ${n}` });
        return res.end();
      }
      res.writeHead(200, { 'last-modified': lastModified, 'cache-control': 'max-age=1', 'x-version': 'first' });
      res.end('dated');
    });
    await fetch(`${base}/d`);
    clock.advance(1100);
    const revalidated = await fetch(`${base}/d`);
    expect(await revalidated.text()).toBe('dated');
    expect(revalidated.headers.get('x-version')).toBe('refreshed 2');
    expect(revalidated.headers.get('cache-status')).toBe('sidecache; fwd=stale; fwd-status=304; ttl=30; stored');
    expect(origin.seen[1]!.headers['if-modified-since']).toBe(lastModified);
    expect((await fetch(`${base}/d`)).headers.get('cache-status')).toMatch(/^sidecache; hit/);
  });

  it('each Vary variant is revalidated with its own validator and keeps its own body', async () => {
    const { origin, base, clock } = await setup((req, res, n) => {
      const lang = req.headers['accept-language'] ?? 'none';
      const etag = `"${lang}"`;
      if (req.headers['if-none-match'] === etag) {
        res.writeHead(304, { etag, vary: 'Accept-Language', 'cache-control': 'max-age=60', 'x-version': `refreshed ${n}` });
        return res.end();
      }
      res.writeHead(200, { etag, vary: 'Accept-Language', 'cache-control': 'max-age=1', 'x-version': 'first' });
      res.end(`${lang} ${n}`);
    });
    const get = (lang: string) => fetch(`${base}/v`, { headers: { 'accept-language': lang } });
    await (await get('en')).text();
    await (await get('fr')).text();
    clock.advance(1100);
    const en = await get('en');
    expect(await en.text()).toBe('en 1');
    expect(en.headers.get('x-version')).toBe('refreshed 3');
    const fr = await get('fr');
    expect(await fr.text()).toBe('fr 2');
    expect(fr.headers.get('x-version')).toBe('refreshed 4');
    expect(origin.seen.map((r) => r.headers['if-none-match'])).toEqual([undefined, undefined, '"en"', '"fr"']);
    expect((await get('en')).headers.get('cache-status')).toMatch(/^sidecache; hit/);
    expect(await (await get('fr')).text()).toBe('fr 2');
    expect(origin.calls('/v')).toBe(4);
  });

  it('after a revalidation, Authorization is answered from the entry only when the response allows it', async () => {
    const { origin, base, clock } = await setup((req, res, n) => {
      const cc = req.url === '/shared' ? 'public, max-age=1' : 'max-age=1';
      if (req.headers['if-none-match'] === '"a"') {
        res.writeHead(304, { etag: '"a"', 'cache-control': cc.replace('max-age=1', 'max-age=60') });
        return res.end();
      }
      res.writeHead(200, { etag: '"a"', 'cache-control': cc });
      res.end(`call ${n} ${req.headers.authorization ?? 'anon'}`);
    });
    const auth = { authorization: 'Bearer alice' };
    await (await fetch(`${base}/shared`)).text();
    await (await fetch(`${base}/mine`)).text();
    clock.advance(1100);
    // Anonymous requests revalidate both entries.
    expect((await fetch(`${base}/shared`)).headers.get('cache-status')).toBe('sidecache; fwd=stale; fwd-status=304; ttl=60; stored');
    expect((await fetch(`${base}/mine`)).headers.get('cache-status')).toBe('sidecache; fwd=stale; fwd-status=304; ttl=60; stored');
    const shared = await fetch(`${base}/shared`, { headers: auth });
    expect(await shared.text()).toBe('call 1 anon');
    expect(shared.headers.get('cache-status')).toMatch(/^sidecache; hit/);
    const mine = await fetch(`${base}/mine`, { headers: auth });
    expect(await mine.text()).toBe('call 3 Bearer alice');
    expect(mine.headers.get('cache-status')).toMatch(/fwd=request/);
    expect(origin.calls('/mine')).toBe(3);
  });
});
