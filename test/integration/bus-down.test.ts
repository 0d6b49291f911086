/**
 * Issue 17 point 2: while a bus is down the cache serves degraded by `whileDown`, for HTTP and
 * PostgreSQL alike, and `/readyz` stays 200 unless `readyz.requireBuses`.
 */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import type { SidecacheServer } from '../../src/server.js';
import { type Origin, startOrigin } from '../helpers/origin.js';
import { connect, PG, pgUnreachable, unique } from '../helpers/pg.js';
import { redisUnreachable } from '../helpers/redis.js';
import { metric, startSidecache } from '../helpers/sidecache.js';
import { waitFor } from '../helpers/wait.js';
import { type ProxiedBus, proxiedPostgresBus, proxiedRedisBus } from './buses-env.js';

const skip = (await pgUnreachable()) ?? (await redisUnreachable());

interface Setup {
  server: SidecacheServer;
  clock: ManualClock;
  origin: Origin;
  bus: ProxiedBus;
  admin: pg.Client;
  client: pg.Client;
  table: string;
}

async function setUp(whileDown: string, makeBus: () => Promise<ProxiedBus> = proxiedRedisBus, more = ''): Promise<Setup> {
  const clock = new ManualClock();
  const origin = await startOrigin(
    (_req, res, n) => {
      res.writeHead(200, { 'cache-control': 'max-age=600' });
      res.end(`call ${n}`);
    },
    { clock },
  );
  const bus = await makeBus();
  const table = unique('down_items');
  const admin = await connect(undefined);
  await admin.query(`CREATE TABLE ${table} (id int PRIMARY KEY, v text)`);
  await admin.query(`INSERT INTO ${table} VALUES (1, 'v0')`);
  const server = await startSidecache(
    `${more}http:
  - { name: api, listen: "127.0.0.1:0", upstream: "${origin.url}" }
postgres:
  - { name: main, listen: "127.0.0.1:0", upstream: "postgres://${PG.host}:${PG.port}?sslmode=disable" }
invalidation:
  - ${bus.entry(`whileDown: "${whileDown}"`)}
`,
    { clock, planWaitMs: 10_000 },
  );
  const client = await connect(server.postgresListeners[0]!.address.port);
  return { server, clock, origin, bus, admin, client, table };
}

async function tearDown(s: Setup | undefined): Promise<void> {
  if (s === undefined) return;
  await s.client.end();
  await s.server.stop(100);
  await s.bus.close();
  await s.origin.close();
  await s.admin.query(`DROP TABLE IF EXISTS ${s.table}`);
  await s.admin.end();
}

const get = async (s: Setup, path: string) => {
  const res = await fetch(`http://127.0.0.1:${s.server.httpListeners[0]!.address.port}${path}`);
  return { status: res.headers.get('cache-status') ?? '', body: await res.text() };
};
const select = async (s: Setup) => (await s.client.query(`SELECT v FROM ${s.table} WHERE id = 1`)).rows[0].v as string;
const pgHits = (s: Setup) => metric(s.server, 'sidecache_requests_total', { protocol: 'postgres', listener: 'main', result: 'hit' });

/** The PostgreSQL SELECT answered from the store (the plan comes from the catalog once first). */
async function primePg(s: Setup): Promise<void> {
  await waitFor(async () => (await select(s)) === 'v0' && (await pgHits(s)) > 0, 'a PostgreSQL hit', 20_000);
}

/** Cuts the bus at its proxy and keeps it down. */
async function cut(s: Setup): Promise<void> {
  s.bus.proxy.refuse(true);
  s.bus.proxy.cut();
  await waitFor(() => s.server.store.degradation !== undefined, 'the bus to be down');
}

async function readyz(s: Setup): Promise<[number, { ready: boolean; degraded?: string[]; serving?: string; reasons?: string[] }]> {
  const res = await fetch(`${s.server.adminUrl}/readyz`);
  return [res.status, (await res.json()) as { ready: boolean }];
}

describe.skipIf(skip !== undefined)('issue 17: a bus outage degrades, it does not unready', () => {
  describe('whileDown: bypass (the default)', () => {
    let s: Setup;
    beforeAll(async () => (s = await setUp('bypass')));
    afterAll(() => tearDown(s));

    it('answers HTTP and PostgreSQL reads from upstream and stores nothing, /readyz 200 with the state, until the bus is back', async () => {
      await get(s, '/a');
      expect((await get(s, '/a')).status).toMatch(/hit/);
      await primePg(s);
      await cut(s);
      expect(await metric(s.server, 'sidecache_serving_degraded', { mode: 'bypass' })).toBe(1);
      const [status, body] = await readyz(s);
      expect(status).toBe(200);
      expect(body).toEqual({ ready: true, degraded: [expect.stringContaining(`bus ${s.bus.bus}: `)], serving: 'bypass (bus-down)' });

      const size = s.server.store.size;
      const calls = s.origin.calls('/a');
      expect(await get(s, '/a')).toEqual({ status: 'sidecache; fwd=bypass; detail=bus-down', body: `call ${calls + 1}` });
      expect(await get(s, '/a')).toEqual({ status: 'sidecache; fwd=bypass; detail=bus-down', body: `call ${calls + 2}` });
      expect((await get(s, '/new')).status).toBe('sidecache; fwd=bypass; detail=bus-down');
      expect(s.origin.calls('/new')).toBe(1);
      expect(s.server.store.size).toBe(size);

      // A write the bus would have announced (it is down: the message is lost) is seen at once.
      const hits = await pgHits(s);
      await s.admin.query(`UPDATE ${s.table} SET v = 'v1' WHERE id = 1`);
      expect(await select(s)).toBe('v1');
      expect(await select(s)).toBe('v1');
      expect(await pgHits(s)).toBe(hits);
      expect(s.server.store.size).toBe(size);

      s.bus.proxy.refuse(false);
      await waitFor(() => s.server.store.degradation === undefined, 'the bus to be back', 10_000);
      expect(await readyz(s)).toEqual([200, { ready: true }]);
      expect(await metric(s.server, 'sidecache_serving_degraded', { mode: 'bypass' })).toBe(0);
      // onGap: flush emptied the store; caching resumes.
      await get(s, '/a');
      expect((await get(s, '/a')).status).toMatch(/hit/);
    });
  });

  describe('whileDown: ttl:30s', () => {
    let s: Setup;
    beforeAll(async () => (s = await setUp('ttl:30s', proxiedPostgresBus)));
    afterAll(() => tearDown(s));

    it('serves entries stored less than 30 s ago and fetches older ones anew, HTTP and PostgreSQL alike', async () => {
      await get(s, '/old');
      await primePg(s);
      s.clock.advance(40_000);
      await get(s, '/young');
      await cut(s);
      expect(await metric(s.server, 'sidecache_serving_degraded', { mode: 'ttl' })).toBe(1);
      expect((await readyz(s))[1].serving).toBe('ttl:30000ms (bus-down)');

      expect((await get(s, '/young')).status).toMatch(/^sidecache; hit/);
      const old = await get(s, '/old');
      expect(old).toEqual({ status: expect.stringMatching(/^sidecache; fwd=uri-miss; .*detail=bus-down$/), body: 'call 2' });
      // Fetched anew, it is young: served from the store again.
      expect(await get(s, '/old')).toEqual({ status: expect.stringMatching(/^sidecache; hit/), body: 'call 2' });

      const hits = await pgHits(s);
      await s.admin.query(`UPDATE ${s.table} SET v = 'v1' WHERE id = 1`);
      expect(await select(s)).toBe('v1');
      expect(await pgHits(s)).toBe(hits);
      // Stored anew during the outage, younger than 30 s: a hit.
      await waitFor(async () => (await select(s)) === 'v1' && (await pgHits(s)) > hits, 'the young PostgreSQL entry served');

      s.clock.advance(31_000);
      expect((await get(s, '/old')).body).toBe('call 3');
    });
  });

  describe('readyz.requireBuses: true', () => {
    let s: Setup;
    beforeAll(async () => (s = await setUp('bypass', proxiedRedisBus, 'readyz: { requireBuses: true }\n')));
    afterAll(() => tearDown(s));

    it('answers 503 naming the bus while it is down, as before this key', async () => {
      expect(await readyz(s)).toEqual([200, { ready: true }]);
      await cut(s);
      const [status, body] = await readyz(s);
      expect(status).toBe(503);
      expect(body.ready).toBe(false);
      expect(body.reasons!.join(' ')).toContain(`bus ${s.bus.bus}`);
      s.bus.proxy.refuse(false);
      await waitFor(async () => (await readyz(s))[0] === 200, '/readyz to recover', 10_000);
    });
  });
});
