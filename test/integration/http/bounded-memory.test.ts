import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import type { SidecacheServer } from '../../../src/server.js';
import { httpListenerYaml, startSidecache } from '../../helpers/sidecache.js';

// `global.gc` for this file only: heap growth is measured after full collections.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const MAX_BYTES = 8 * 1024 * 1024;
const URLS = 20_000;
const cleanup: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/**
 * An origin that records nothing (the test helpers' origin keeps every request, which would be the
 * growth measured) and a sidecache with `cache.maxBytes: 8MiB` in front of it.
 */
async function start(cacheControl: string, vary: string): Promise<{ server: SidecacheServer; get: (path: string) => Promise<void> }> {
  const origin = http.createServer((_req, res) => {
    res.writeHead(200, { 'cache-control': cacheControl, vary });
    res.end('x');
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  cleanup.push(() => new Promise((resolve) => origin.close(resolve)));
  const server = await startSidecache(`cache: { maxBytes: 8MiB }\n${httpListenerYaml(`http://127.0.0.1:${(origin.address() as AddressInfo).port}`)}`);
  cleanup.push(() => server.stop(100));
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  cleanup.push(async () => agent.destroy());
  const base = server.httpListeners[0]!.url;
  const get = (path: string): Promise<void> =>
    new Promise((resolve, reject) => {
      http
        .get(`${base}${path}`, { agent }, (res) => {
          res.resume();
          res.on('end', resolve);
        })
        .on('error', reject);
    });
  return { server, get };
}

async function getMany(get: (path: string) => Promise<void>, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i += 50) await Promise.all(Array.from({ length: Math.min(50, to - i) }, (_, j) => get(`/u/${i + j}/${'p'.repeat(2000)}`)));
}

function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

describe('http: memory is bounded by cache.maxBytes, not by the number of URLs', () => {
  it('20,000 distinct private URLs: the hit-for-miss marks stay within their share, and the heap does not grow with the URLs', async () => {
    const { server, get } = await start('private, max-age=60', 'accept');
    // Warm up: sockets, code paths, the marks' first share.
    await getMany(get, 0, 2_000);
    const before = heapAfterGc();
    await getMany(get, 2_000, URLS);
    const grown = heapAfterGc() - before;
    const side = server.httpListeners[0]!.sideMemory;
    expect(side.limitBytes).toBeLessThanOrEqual(MAX_BYTES / 8);
    expect(side.accountedBytes).toBeLessThanOrEqual(side.limitBytes);
    expect(server.store.bytes).toBe(0);
    // 18,000 more URLs of about 2 kB: before the bounds, each kept a hit-for-miss mark and a route
    // memo record (10,000 of those), about 70 MB of heap.
    expect(grown).toBeLessThan(4 * 1024 * 1024);
  }, 60_000);

  it('20,000 distinct stored URLs with Vary: the Vary memory stays within its share', async () => {
    const { server, get } = await start('max-age=60', 'accept');
    await getMany(get, 0, URLS);
    const side = server.httpListeners[0]!.sideMemory;
    expect(side.accountedBytes).toBeGreaterThan(0);
    expect(side.accountedBytes).toBeLessThanOrEqual(side.limitBytes);
    expect(server.store.bytes).toBeLessThanOrEqual(MAX_BYTES);
  }, 60_000);
});
