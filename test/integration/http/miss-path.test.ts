import http from 'node:http';
import { describe, expect, it } from 'vitest';
import { request } from '../../helpers/client.js';
import { counting, useHttpSetup } from '../../helpers/http-setup.js';

// A manual clock: the ttl in Cache-Status is read when the answer is written, which a loaded machine could put past a second boundary.
const setup = useHttpSetup({ manualClock: true });

describe('http read-through: the miss path', () => {
  it('a HEAD that misses fills with a GET: the head at once, no body, then GETs are hits', async () => {
    const { origin, base } = await setup(counting());
    const head = await request(`${base}/hm`, { method: 'HEAD' });
    expect([head.status, head.headers['cache-status'], head.body]).toEqual([200, 'sidecache; fwd=uri-miss; ttl=60; stored', '']);
    expect(origin.seen.map((r) => r.method)).toEqual(['GET']);
    const get = await request(`${base}/hm`);
    expect([get.body, get.headers['cache-status']]).toEqual(['call 1', expect.stringMatching(/^sidecache; hit; ttl=/)]);
    expect(origin.calls('/hm')).toBe(1);
  });

  it('a leader whose upstream body breaks loses its connection, and nothing is stored', async () => {
    const { origin, base } = await setup((req, res, n) => {
      res.writeHead(200, { 'cache-control': 'max-age=60' });
      if (n === 1) res.write('half ', () => req.socket.destroy());
      else res.end('half whole');
    });
    const first = await fetch(`${base}/broken`);
    expect([first.status, first.headers.get('cache-status')]).toEqual([200, 'sidecache; fwd=uri-miss; ttl=60; stored']);
    await expect(first.text()).rejects.toThrow();
    const second = await fetch(`${base}/broken`);
    expect(await second.text()).toBe('half whole');
    expect(origin.calls('/broken')).toBe(2);
  });

  it("reads the upstream body no faster than the leader's client takes it (backpressure)", async () => {
    const total = 64 * 1024 * 1024;
    const chunk = Buffer.alloc(256 * 1024, 'b');
    let written = 0;
    const { base } = await setup((_req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': String(total) });
      const pump = (): void => {
        while (written < total) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
    let received = 0;
    let writtenWhilePaused = 0;
    const done = new Promise<void>((resolve, reject) => {
      http
        .get(`${base}/big`, (res) => {
          res.pause();
          setTimeout(() => {
            writtenWhilePaused = written;
            res.on('data', (c: Buffer) => (received += c.length));
            res.on('end', resolve);
            res.resume();
          }, 300);
        })
        .on('error', reject);
    });
    await done;
    // The client read nothing for 300 ms: the origin got out only what the sockets and buffers between hold.
    expect(writtenWhilePaused).toBeLessThan(total / 2);
    expect(received).toBe(total);
  });
});
