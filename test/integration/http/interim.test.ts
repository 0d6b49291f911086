import http from 'node:http';
import { describe, expect, it } from 'vitest';
import { useHttpSetup } from '../../helpers/http-setup.js';
import { gate, waitFor } from '../../helpers/wait.js';

const setup = useHttpSetup();

interface Answer {
  interim: { status: number; headers: http.IncomingHttpHeaders }[];
  status: number;
  body: string;
  cacheStatus: string | undefined;
}

/** A GET that records the interim (1xx) responses before the final one. */
function get(url: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const interim: Answer['interim'] = [];
    const req = http.get(url, { agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ interim, status: res.statusCode ?? 0, body, cacheStatus: res.headers['cache-status'] as string | undefined }));
    });
    req.on('information', (info) => interim.push({ status: info.statusCode, headers: info.headers }));
    req.on('error', reject);
  });
}

describe('http interim responses (RFC 9110 §15.2)', () => {
  it("forwards 103 Early Hints to the leader's client on a miss; waiters and hits never get them", async () => {
    const held = gate();
    const { origin, base } = await setup((_req, res, n) => {
      res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
      void held.promise.then(() => {
        res.writeHead(200, { 'cache-control': 'max-age=60' });
        res.end(`call ${n}`);
      });
    });
    const leader = get(`${base}/page`);
    await waitFor(() => origin.calls('/page') === 1, 'the leader at the origin');
    const waiter = get(`${base}/page`);
    held.release();
    const [a, b] = await Promise.all([leader, waiter]);
    expect(a.interim).toEqual([{ status: 103, headers: expect.objectContaining({ link: '</style.css>; rel=preload; as=style' }) }]);
    expect([a.status, a.body]).toEqual([200, 'call 1']);
    expect([b.interim, b.body]).toEqual([[], 'call 1']);
    const hit = await get(`${base}/page`);
    expect([hit.interim, hit.body, hit.cacheStatus]).toEqual([[], 'call 1', expect.stringMatching(/^sidecache; hit/)]);
    expect(origin.calls('/page')).toBe(1);
  });
});
