import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { request } from '../../helpers/client.js';
import { useHttpSetup } from '../../helpers/http-setup.js';

const setup = useHttpSetup({ manualClock: true });
const BODY = '0123456789';

/** An origin that answers ranges itself (one range only), so a pass-through is visible as the origin's 206. */
function origin(cacheControl: string) {
  return (req: IncomingMessage, res: ServerResponse, n: number): void => {
    const headers = { 'cache-control': cacheControl, etag: '"v1"', 'last-modified': 'Wed, 01 Jan 2025 00:00:00 GMT', 'x-call': String(n) };
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (m !== null) {
      res.writeHead(206, { ...headers, 'content-range': `bytes ${m[1]}-${m[2]}/${BODY.length}` });
      return void res.end(BODY.slice(Number(m[1]), Number(m[2]) + 1));
    }
    res.writeHead(200, headers);
    res.end(BODY);
  };
}

const get = (url: string, headers: Record<string, string> = {}, method = 'GET') => request(url, { headers, method });

describe('http Range requests answered from stored complete responses (RFC 9110 §14)', () => {
  it('one range from a stored 200: 206 with Content-Range; suffix and open ranges; HEAD without body', async () => {
    const { origin: o, base } = await setup(origin('max-age=60'));
    await get(`${base}/r`);
    const part = await get(`${base}/r`, { range: 'bytes=2-5' });
    expect([part.status, part.body, part.headers['content-range'], part.headers['content-length']]).toEqual([206, '2345', 'bytes 2-5/10', '4']);
    expect(part.headers['cache-status']).toBe('sidecache; hit; ttl=60; detail=PARTIAL');
    expect((await get(`${base}/r`, { range: 'bytes=-3' })).body).toBe('789');
    expect((await get(`${base}/r`, { range: 'bytes=7-' })).body).toBe('789');
    expect((await get(`${base}/r`, { range: 'bytes=8-100' })).headers['content-range']).toBe('bytes 8-9/10');
    const head = await get(`${base}/r`, { range: 'bytes=0-0' }, 'HEAD');
    expect([head.status, head.body, head.headers['content-range']]).toEqual([206, '', 'bytes 0-0/10']);
    expect(o.calls('/r')).toBe(1);
    expect(o.seen.every((r) => r.headers.range === undefined)).toBe(true);
  });

  it('several ranges, another unit or a bad field: the full 200; unsatisfiable: 416 bytes */len', async () => {
    const { base } = await setup(origin('max-age=60'));
    await get(`${base}/m`);
    const many = await get(`${base}/m`, { range: 'bytes=0-1,4-5' });
    expect([many.status, many.body, many.headers['cache-status']]).toEqual([200, BODY, 'sidecache; hit; ttl=60; detail=MULTIPLE-RANGES']);
    for (const range of ['items=0-1', 'bytes=5-2', 'bytes=x-']) {
      const full = await get(`${base}/m`, { range });
      expect([full.status, full.body, full.headers['cache-status']]).toEqual([200, BODY, 'sidecache; hit; ttl=60; detail=RANGE-IGNORED']);
    }
    for (const range of ['bytes=10-', 'bytes=-0']) {
      const none = await get(`${base}/m`, { range });
      expect([none.status, none.headers['content-range'], none.headers['cache-status']]).toEqual([
        416,
        'bytes */10',
        'sidecache; hit; ttl=60; detail=RANGE-NOT-SATISFIABLE',
      ]);
    }
  });

  it('If-Range: the stored strong ETag or exact Last-Modified gives the range, anything else the full 200', async () => {
    const { base } = await setup(origin('max-age=60'));
    await get(`${base}/i`);
    expect((await get(`${base}/i`, { range: 'bytes=0-1', 'if-range': '"v1"' })).status).toBe(206);
    expect((await get(`${base}/i`, { range: 'bytes=0-1', 'if-range': 'Wed, 01 Jan 2025 00:00:00 GMT' })).status).toBe(206);
    for (const ifRange of ['"v0"', 'W/"v1"', 'Thu, 02 Jan 2025 00:00:00 GMT']) {
      const full = await get(`${base}/i`, { range: 'bytes=0-1', 'if-range': ifRange });
      expect([full.status, full.body, full.headers['cache-status']]).toEqual([200, BODY, 'sidecache; hit; ttl=60; detail=IF-RANGE-MISMATCH']);
    }
  });

  it('a Range request on a miss fetches the whole representation, stores it and answers its range', async () => {
    const { origin: o, base } = await setup(origin('max-age=60'));
    const part = await get(`${base}/miss`, { range: 'bytes=1-2' });
    expect([part.status, part.body, part.headers['content-range']]).toEqual([206, '12', 'bytes 1-2/10']);
    expect(part.headers['cache-status']).toBe('sidecache; fwd=uri-miss; ttl=60; stored; detail=PARTIAL');
    expect(o.seen.map((r) => r.headers.range)).toEqual([undefined]);
    const full = await get(`${base}/miss`);
    expect([full.body, full.headers['cache-status']]).toEqual([BODY, 'sidecache; hit; ttl=60']);
  });

  it('a Range request whose response may not be stored goes upstream as it is', async () => {
    const { origin: o, base } = await setup(origin('no-store'));
    const part = await get(`${base}/ns`, { range: 'bytes=1-2' });
    expect([part.status, part.body, part.headers['x-call'], part.headers['cache-status']]).toEqual([206, '12', '2', 'sidecache; fwd=request']);
    // The key now skips the fill: the next one goes upstream at once.
    const again = await get(`${base}/ns`, { range: 'bytes=3-4' });
    expect([again.status, again.body, again.headers['x-call']]).toEqual([206, '34', '3']);
  });
});
