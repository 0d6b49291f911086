/**
 * Issue 14 point 4: `workers: 2`, real processes of the built CLI. Each new connection goes to the
 * next worker (node:cluster round-robin), so a key requested on fresh connections ends up cached in
 * both workers' stores; every way of invalidating it must then empty both, before the client that
 * caused it hears back (but for a bus message, which has no client to answer).
 */
import http from 'node:http';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { type Origin, startOrigin } from '../helpers/origin.js';
import { connect, PG, pgUnreachable, unique } from '../helpers/pg.js';
import { redisUnreachable, REDIS_URL } from '../helpers/redis.js';
import { sample } from '../helpers/sidecache.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { waitFor } from '../helpers/wait.js';
import { requestAlone, spawnWorkers, type WorkersInstance } from '../helpers/workers.js';

const skip = (await pgUnreachable()) ?? (await redisUnreachable());

interface Row {
  worker: number;
  key: { url?: string; sql?: string };
  hits: number;
}

describe.skipIf(skip !== undefined)('issue 14: workers: 2', () => {
  const channel = unique('workers');
  const table = unique('workers_items');
  let origin: Origin;
  let proxy: TcpProxy;
  let sc: WorkersInstance;
  let admin: Awaited<ReturnType<typeof connect>>;
  let publisher: Redis;

  beforeAll(async () => {
    origin = await startOrigin((req, res, n) => {
      if (req.method !== 'GET') return void res.writeHead(204).end();
      res.writeHead(200, { 'cache-control': 'max-age=600', 'surrogate-key': `t${req.url}` });
      res.end(`call ${n}`);
    });
    admin = await connect(undefined);
    await admin.query(`CREATE TABLE ${table} (id int PRIMARY KEY, v text)`);
    await admin.query(`INSERT INTO ${table} VALUES (1, 'v0')`);
    const redis = new URL(REDIS_URL);
    proxy = await startTcpProxy({ host: redis.hostname, port: Number(redis.port || 6379) });
    publisher = new Redis(REDIS_URL);
    sc = await spawnWorkers(`workers: 2
admin: { listen: "127.0.0.1:0" }
http:
  - { name: api, listen: "127.0.0.1:0", upstream: "${origin.url}" }
postgres:
  - { name: main, listen: "127.0.0.1:0", upstream: "postgres://${PG.host}:${PG.port}?sslmode=disable" }
invalidation:
  - { type: redis, url: "redis://${proxy.host}:${proxy.port}", channel: ${channel} }
`);
  }, 60_000);
  afterAll(async () => {
    await sc?.stop();
    await origin?.close();
    await proxy?.close();
    publisher?.disconnect();
    await admin?.query(`DROP TABLE IF EXISTS ${table}`);
    await admin?.end();
  });

  const entries = async (query: string): Promise<Row[]> => ((await (await fetch(`${sc.admin}/cache/entries?${query}`)).json()) as { entries: Row[] }).entries;
  const workersHolding = async (path: string): Promise<number[]> =>
    (await entries(`protocol=http&prefix=${encodeURIComponent(path)}`))
      .filter((r) => r.key.url === path)
      .map((r) => r.worker)
      .sort();
  /** Requests `path` on fresh connections until both workers hold it. */
  const cachedInBoth = async (path: string): Promise<void> => {
    await waitFor(async () => {
      await requestAlone(`${sc.http!}${path}`);
      return (await workersHolding(path)).length === 2;
    }, `${path} cached in both workers`);
    expect(await workersHolding(path)).toEqual([1, 2]);
  };
  const scrape = async (): Promise<string> => (await fetch(`${sc.admin}/metrics`)).text();
  /**
   * Two keep-alive connections, one to each worker, with `path` cached through both. A request on
   * the second goes straight to its worker, not through the primary: if it is a hit after the
   * first's answer, that worker had not yet applied what the first one invalidated.
   */
  const pinned = async (path: string): Promise<[http.Agent, http.Agent]> => {
    const agents: [http.Agent, http.Agent] = [new http.Agent({ keepAlive: true, maxSockets: 1 }), new http.Agent({ keepAlive: true, maxSockets: 1 })];
    onTestFinished(() => agents.forEach((a) => a.destroy()));
    for (const agent of agents) await requestAlone(`${sc.http!}${path}`, 'GET', agent);
    expect(await workersHolding(path)).toEqual([1, 2]);
    for (const agent of agents) expect((await requestAlone(`${sc.http!}${path}`, 'GET', agent)).cacheStatus).toMatch(/^sidecache; hit/);
    return agents;
  };

  it('spreads connections over both workers, each with half of cache.maxBytes; /metrics and /cache add them up', async () => {
    const before = await scrape();
    const paths = Array.from({ length: 10 }, (_, i) => `/spread/${i}`);
    for (const path of paths) expect((await requestAlone(`${sc.http!}${path}`)).status).toBe(200);
    const rows = await entries('protocol=http&prefix=/spread/');
    expect(new Set(rows.map((r) => r.worker))).toEqual(new Set([1, 2]));
    const cache = (await (await fetch(`${sc.admin}/cache`)).json()) as {
      entries: number;
      bytes: number;
      maxBytes: number;
      listeners: { api: { miss: number } };
      workers: { worker: number; entries: number; bytes: number; maxBytes: number }[];
    };
    expect(cache.maxBytes).toBe(256 * 1024 ** 2);
    expect(cache.workers.map((w) => w.maxBytes)).toEqual([128 * 1024 ** 2, 128 * 1024 ** 2]);
    expect(cache.entries).toBe(cache.workers[0]!.entries + cache.workers[1]!.entries);
    const after = await scrape();
    const misses = (text: string) => sample(text, 'sidecache_requests_total', { protocol: 'http', listener: 'api', result: 'miss' });
    expect(misses(after) - misses(before)).toBe(10);
    expect(misses(after)).toBe(cache.listeners.api.miss);
    expect(sample(after, 'sidecache_cache_entries')).toBe(cache.entries);
    expect(sample(after, 'sidecache_cache_bytes')).toBe(cache.bytes);
    // The configured total, not a sum of shares; gauges of the primary's own once.
    expect(sample(after, 'sidecache_cache_max_bytes')).toBe(256 * 1024 ** 2);
    expect(sample(after, 'sidecache_bus_connected', { bus: `redis:${channel}` })).toBe(1);
    expect(after).toMatch(/^sidecache_build_info\{[^}]*\} 1$/m);
  });

  it('a bus message empties both workers', async () => {
    await cachedInBoth('/bus');
    await publisher.publish(channel, JSON.stringify({ tags: ['t/bus'] }));
    await waitFor(async () => (await workersHolding('/bus')).length === 0, 'the message applied in both workers');
  });

  it('PURGE through one worker has emptied both when it is answered', async () => {
    for (let round = 0; round < 5; round++) {
      const [one, other] = await pinned(`/purge/${round}`);
      expect((await requestAlone(`${sc.http!}/purge/${round}`, 'PURGE', one)).status).toBe(200);
      expect((await requestAlone(`${sc.http!}/purge/${round}`, 'GET', other)).cacheStatus).toMatch(/fwd=uri-miss/);
    }
  });

  it('an unsafe method through one worker has emptied both when it is answered (RFC 9111 §4.4)', async () => {
    for (let round = 0; round < 5; round++) {
      const [one, other] = await pinned(`/unsafe/${round}`);
      expect((await requestAlone(`${sc.http!}/unsafe/${round}`, 'POST', one)).status).toBe(204);
      expect((await requestAlone(`${sc.http!}/unsafe/${round}`, 'GET', other)).cacheStatus).toMatch(/fwd=uri-miss/);
    }
  });

  it('POST /invalidate on the admin empties both and counts what both removed', async () => {
    await cachedInBoth('/admin');
    const res = await fetch(`${sc.admin}/invalidate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ tags: ['t/admin'] }),
    });
    expect(await res.json()).toEqual({ invalidated: 2 });
    expect(await workersHolding('/admin')).toEqual([]);
    // The live page reads the workers too: what they removed, and their counts.
    const live = (await (await fetch(`${sc.admin}/live`)).json()) as {
      invalidations: { source: string; removed: number }[];
      listeners: { api: { miss: number } };
    };
    expect(live.invalidations[0]).toMatchObject({ source: 'admin', removed: 2, named: { tags: ['t/admin'] } });
    const cache = (await (await fetch(`${sc.admin}/cache`)).json()) as { listeners: { api: { miss: number } } };
    expect(live.listeners.api.miss).toBe(cache.listeners.api.miss);
  });

  it('a PostgreSQL UPDATE through one worker: a session on the other reads the new row right after', async () => {
    const select = `SELECT v FROM ${table} WHERE id = 1`;
    const held = async (): Promise<number[]> =>
      (await entries(`protocol=postgres`))
        .filter((r) => r.key.sql?.includes(table) === true)
        .map((r) => r.worker)
        .sort();
    const sessions: Awaited<ReturnType<typeof connect>>[] = [];
    onTestFinished(() => Promise.all(sessions.map((c) => c.end())).then(() => undefined));
    // One session per worker, each with the row cached (two in a row may land on the same worker: then one more).
    await waitFor(async () => {
      const session = await connect(sc.pgPort!);
      sessions.push(session);
      for (const s of sessions) await s.query(select);
      return (await held()).length === 2;
    }, 'the SELECT cached in both workers');
    for (let round = 1; round <= 3; round++) {
      for (const s of sessions) await s.query(select);
      expect(await held()).toEqual([1, 2]);
      await sessions[0]!.query(`UPDATE ${table} SET v = 'v${round}' WHERE id = 1`);
      for (const s of sessions) expect((await s.query(select)).rows).toEqual([{ v: `v${round}` }]);
    }
  });

  it('a bus outage: both workers bypass while it lasts, and its gap flushes both', async () => {
    await cachedInBoth('/gap');
    proxy.refuse(true);
    proxy.cut();
    await waitFor(async () => ((await (await fetch(`${sc.admin}/readyz`)).json()) as { serving?: string }).serving === 'bypass (bus-down)', 'the bus down');
    // Whichever worker answers, nothing comes from its store.
    for (let i = 0; i < 4; i++) expect((await requestAlone(`${sc.http!}/gap`)).cacheStatus).toBe('sidecache; fwd=bypass; detail=bus-down');
    // A worker started meanwhile serves by the same whileDown from its first request: it bypasses, it does not fill.
    const victim = sc.workerPids().get(2)!;
    process.kill(victim, 'SIGKILL');
    await waitFor(() => sc.workerPids().get(2) !== victim, 'worker 2 replaced', 15_000);
    for (let i = 0; i < 4; i++) expect((await requestAlone(`${sc.http!}/gap`)).cacheStatus).toBe('sidecache; fwd=bypass; detail=bus-down');
    proxy.refuse(false);
    await waitFor(async () => ((await (await fetch(`${sc.admin}/readyz`)).json()) as { degraded?: string[] }).degraded === undefined, 'the bus back');
    expect(sample(await scrape(), 'sidecache_bus_gaps_total', { bus: `redis:${channel}` })).toBeGreaterThan(0);
    // Bypassing left the entries in the stores; the flush removed them.
    expect(await workersHolding('/gap')).toEqual([]);
    expect((await requestAlone(`${sc.http!}/gap`)).cacheStatus).toMatch(/fwd=uri-miss/);
  });

  it('a killed worker is replaced, with an empty store, and serves', async () => {
    await cachedInBoth('/killed');
    const pids = sc.workerPids();
    const victim = pids.get(1)!;
    process.kill(victim, 'SIGKILL');
    await waitFor(() => sc.workerPids().get(1) !== victim, 'worker 1 replaced', 15_000);
    await waitFor(async () => (await fetch(`${sc.admin}/readyz`)).status === 200, 'ready again');
    expect(sc.log()).toMatch(/"msg":"worker exited; starting another"[^\n]*"worker":1/);
    expect(await workersHolding('/killed')).toEqual([2]);
    for (let i = 0; i < 4; i++) expect((await requestAlone(`${sc.http!}/killed`)).status).toBe(200);
    expect(await workersHolding('/killed')).toEqual([1, 2]);
  });

  it('a stuck worker does not hang the admin: /cache and /metrics answer without it', async () => {
    const pid = sc.workerPids().get(2)!;
    process.kill(pid, 'SIGSTOP');
    try {
      const [cache, metrics] = await Promise.all([fetch(`${sc.admin}/cache`), fetch(`${sc.admin}/metrics`)]);
      expect(((await cache.json()) as { workers: { worker: number }[] }).workers.map((w) => w.worker)).toEqual([1]);
      expect(metrics.status).toBe(200);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
  }, 30_000);

  it('a reload is validated by the primary and applied by every worker; SIGTERM stops them all', async () => {
    const res = await fetch(`${sc.admin}/reload`, { method: 'POST', headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(200);
    const pids = [...sc.workerPids().values()];
    await sc.stop();
    expect(sc.child.exitCode).toBe(0);
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
  });
});
