import { describe, expect, it } from 'vitest';
import { useHttpSetup } from '../../helpers/http-setup.js';

// Time moves only by clock.advance(): sidecache and the origin's Date header share the clock.
const setup = useHttpSetup({ manualClock: true });

/** Client request directives are honoured on every path (whatever the listener's default). */
const HONOUR_REQUEST_CC = '    rules:\n      - { path: "/**", ignoreRequestCacheControl: false }\n';

describe('http: serving stale (RFC 9111 §4.2.4)', () => {
  // §5.2.2.4 no-cache, §5.2.2.2 must-revalidate, §5.2.2.8 proxy-revalidate, §5.2.2.10 s-maxage:
  // a stored response with one of them is never served stale, whatever the request's max-stale says.
  for (const cc of ['no-cache', 'max-age=1, must-revalidate', 'max-age=1, proxy-revalidate', 's-maxage=1']) {
    it(`max-stale does not serve a stale "${cc}" response without revalidation`, async () => {
      const { origin, base, clock } = await setup((_req, res, n) => {
        res.writeHead(200, { 'cache-control': cc, etag: `"v${n}"` });
        res.end(`user document ${n}`);
      }, HONOUR_REQUEST_CC);
      expect(await (await fetch(`${base}/doc`)).text()).toBe('user document 1');
      clock.advance(2000);
      const res = await fetch(`${base}/doc`, { headers: { 'cache-control': 'max-stale' } });
      expect(await res.text()).toBe('user document 2');
      expect(origin.calls('/doc')).toBe(2);
      expect(res.headers.get('cache-status')).toContain('fwd=stale');
    });
  }

  it('max-stale still serves a stale response that allows it', async () => {
    const { origin, base, clock } = await setup((_req, res, n) => {
      res.writeHead(200, { 'cache-control': 'max-age=1', etag: `"v${n}"` });
      res.end(`v${n}`);
    }, HONOUR_REQUEST_CC);
    await fetch(`${base}/ok`);
    clock.advance(2000);
    expect(await (await fetch(`${base}/ok`, { headers: { 'cache-control': 'max-stale=60' } })).text()).toBe('v1');
    expect(origin.calls('/ok')).toBe(1);
  });
});

describe('http: freshness and age (RFC 9111 §4.2.1, §4.2.3)', () => {
  it('Date an hour in the past with Expires ten seconds ahead is fresh for ten seconds, not 3,610', async () => {
    const { origin, base, clock } = await setup((_req, res, n) => {
      res.setHeader('date', new Date(clock.now() - 3_600_000).toUTCString());
      res.writeHead(200, { expires: new Date(clock.now() + 10_000).toUTCString() });
      res.end(`v${n}`);
    });
    const first = await fetch(`${base}/e`);
    expect(first.headers.get('cache-status')).toBe('sidecache; fwd=uri-miss; ttl=10; stored');
    const hit = await fetch(`${base}/e`);
    expect(hit.headers.get('age')).toBe('3600');
    clock.advance(11_000);
    expect(await (await fetch(`${base}/e`)).text()).toBe('v2');
    expect(origin.calls('/e')).toBe(2);
  });

  it('Date an hour in the past with max-age=60 is stale on arrival', async () => {
    const { origin, base, clock } = await setup((_req, res, n) => {
      res.setHeader('date', new Date(clock.now() - 3_600_000).toUTCString());
      res.writeHead(200, { 'cache-control': 'max-age=60' });
      res.end(`v${n}`);
    });
    await fetch(`${base}/old`);
    expect(await (await fetch(`${base}/old`)).text()).toBe('v2');
    expect(origin.calls('/old')).toBe(2);
  });

  for (const age of ['-30', '1.5', '10abc', '']) {
    it(`an invalid Age ("${age}") is ignored`, async () => {
      const { base } = await setup((_req, res) => {
        res.writeHead(200, { 'cache-control': 'max-age=60', age });
        res.end('x');
      });
      expect((await fetch(`${base}/a`)).headers.get('cache-status')).toBe('sidecache; fwd=uri-miss; ttl=60; stored');
      expect((await fetch(`${base}/a`)).headers.get('age')).toBe('0');
    });
  }

  it('a valid Age counts toward the current age', async () => {
    const { base } = await setup((_req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=60', age: '10' });
      res.end('x');
    });
    expect((await fetch(`${base}/a`)).headers.get('cache-status')).toBe('sidecache; fwd=uri-miss; ttl=50; stored');
    expect((await fetch(`${base}/a`)).headers.get('age')).toBe('10');
  });

  for (const expires of ['2099-01-01T00:00:00Z', '0', 'tomorrow', 'Thu, 01 Jan 2099 00:00:00 +0000']) {
    it(`an invalid Expires ("${expires}") means already expired (RFC 9110 §5.6.7)`, async () => {
      const { origin, base } = await setup((_req, res, n) => {
        res.writeHead(200, { expires });
        res.end(`v${n}`);
      });
      await fetch(`${base}/x`);
      expect(await (await fetch(`${base}/x`)).text()).toBe('v2');
      expect(origin.calls('/x')).toBe(2);
    });
  }

  it('an RFC 850 year more than 50 years ahead is the past century (RFC 9110 §5.6.7)', async () => {
    const { origin, base } = await setup((_req, res, n) => {
      res.writeHead(200, { expires: 'Thursday, 01-Jan-99 00:00:00 GMT' });
      res.end(`v${n}`);
    });
    await fetch(`${base}/x`);
    expect(await (await fetch(`${base}/x`)).text()).toBe('v2');
    expect(origin.calls('/x')).toBe(2);
  });

  for (const format of ['Thu, 01 Jan 2099 00:00:00 GMT', 'Tuesday, 01-Jan-30 00:00:00 GMT', 'Thu Jan  1 00:00:00 2099']) {
    it(`a valid Expires ("${format}") gives freshness`, async () => {
      const { origin, base } = await setup((_req, res, n) => {
        res.writeHead(200, { expires: format });
        res.end(`v${n}`);
      });
      await fetch(`${base}/x`);
      expect(await (await fetch(`${base}/x`)).text()).toBe('v1');
      expect(origin.calls('/x')).toBe(1);
    });
  }
});
