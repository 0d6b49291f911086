/**
 * Issue 17: two sidecache processes (one per app pod) on one bus. Every invalidation one of them
 * decides itself reaches the other: a write through A is never followed by old data from B.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Instance, spawnInstance } from '../helpers/instance.js';
import { type Origin, startOrigin } from '../helpers/origin.js';
import { connect, PG, pgUnreachable, unique } from '../helpers/pg.js';
import { redisUnreachable, REDIS_URL } from '../helpers/redis.js';
import { sample } from '../helpers/sidecache.js';
import { waitFor } from '../helpers/wait.js';

const run = promisify(execFile);
const skipPg = await pgUnreachable();
const skipRedis = await redisUnreachable();

const scrape = async (i: Instance, name: string, labels: Record<string, string>) => sample(await (await fetch(`${i.admin}/metrics`)).text(), name, labels);

function replicas(kind: 'redis' | 'postgres', skip: string | undefined): void {
  describe.skipIf(skip !== undefined)(`issue 17: two replicas on one ${kind} bus`, () => {
    const channel = unique('fan');
    const table = unique('fan_items');
    const bus = `${kind}:${channel}`;
    let origin: Origin;
    let a: Instance;
    let b: Instance;
    let admin: Awaited<ReturnType<typeof connect>>;

    beforeAll(async () => {
      origin = await startOrigin((req, res, n) => {
        if (req.method !== 'GET') return void res.writeHead(204).end();
        res.writeHead(200, { 'cache-control': 'max-age=600', 'surrogate-key': 'shared' });
        res.end(`call ${n}`);
      });
      admin = await connect(undefined);
      await admin.query(`CREATE TABLE ${table} (id int PRIMARY KEY, v text)`);
      await admin.query(`INSERT INTO ${table} VALUES (1, 'v0')`);
      const url = kind === 'redis' ? REDIS_URL : `postgres://${PG.user}@${PG.host}:${PG.port}/${PG.database}`;
      const config = `admin: { listen: "127.0.0.1:0" }
http:
  - { name: api, listen: "127.0.0.1:0", upstream: "${origin.url}" }
postgres:
  - { name: main, listen: "127.0.0.1:0", upstream: "postgres://${PG.host}:${PG.port}?sslmode=disable" }
invalidation:
  - { type: ${kind}, url: "${url}", channel: ${channel} }
`;
      [a, b] = await Promise.all([spawnInstance(config, { http: true, postgres: true }), spawnInstance(config, { http: true, postgres: true })]);
    });
    afterAll(async () => {
      await Promise.all([a?.stop(), b?.stop()]);
      await origin?.close();
      await admin?.query(`DROP TABLE IF EXISTS ${table}`);
      await admin?.end();
    });

    const get = async (i: Instance) => {
      const res = await fetch(`${i.http!}/items`);
      return { status: res.headers.get('cache-status') ?? '', body: await res.text() };
    };
    /** B holds /items (a hit), then `act` runs through A; once B has A's message, B's next read is fresh. */
    const fansOut = async (act: () => Promise<void>) => {
      await get(b);
      const cached = await get(b);
      expect(cached.status).toMatch(/hit/);
      const applied = await scrape(b, 'sidecache_invalidations_total', { source: bus });
      const sent = await scrape(a, 'sidecache_bus_publishes_total', { bus, result: 'sent' });
      await act();
      // A answered only once its message was out.
      expect(await scrape(a, 'sidecache_bus_publishes_total', { bus, result: 'sent' })).toBeGreaterThan(sent);
      await waitFor(async () => (await scrape(b, 'sidecache_invalidations_total', { source: bus })) > applied, "A's message at B");
      const fresh = await get(b);
      expect(fresh.status).toMatch(/fwd=uri-miss/);
      expect(fresh.body).not.toBe(cached.body);
      // A's own message came back to A: recognised, not applied twice.
      await waitFor(async () => (await scrape(a, 'sidecache_bus_echoes_total', { bus })) > 0, 'the echo at A');
    };

    it('an unsafe method through A (RFC 9111 §4.4)', async () => {
      await fansOut(async () => {
        const res = await fetch(`${a.http!}/items`, { method: 'POST', body: 'x' });
        expect(res.status).toBe(204);
      });
    });

    it('PURGE on A', async () => {
      await fansOut(async () => {
        const res = await fetch(`${a.http!}/items`, { method: 'PURGE' });
        // A itself holds nothing of /items: only B did.
        expect(await res.json()).toEqual({ purged: 0 });
      });
    });

    it('POST /invalidate on A', async () => {
      await fansOut(async () => {
        const res = await fetch(`${a.admin}/invalidate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"tags":["shared"]}' });
        expect(res.status).toBe(200);
      });
    });

    it('sidecache invalidate against A', async () => {
      await fansOut(async () => {
        const { stdout } = await run(process.execPath, ['dist/cli.js', 'invalidate', '--admin', a.admin, '--tag', 'shared']);
        expect(stdout).toMatch(/invalidated 0/);
      });
    });

    it('an UPDATE in a transaction through A’s PostgreSQL listener', async () => {
      const [ca, cb] = await Promise.all([connect(a.pgPort), connect(b.pgPort)]);
      try {
        const read = async () => (await cb.query(`SELECT v FROM ${table} WHERE id = 1`)).rows[0].v as string;
        const hits = () => scrape(b, 'sidecache_requests_total', { protocol: 'postgres', listener: 'main', result: 'hit' });
        // The plan comes from the catalog once: read until B answers from its store.
        await waitFor(async () => (await read()) === 'v0' && (await hits()) > 0, 'a PostgreSQL hit at B', 20_000);
        const applied = await scrape(b, 'sidecache_invalidations_total', { source: bus });
        await ca.query('BEGIN');
        await ca.query(`UPDATE ${table} SET v = 'v1' WHERE id = 1`);
        await ca.query('COMMIT');
        await waitFor(async () => (await scrape(b, 'sidecache_invalidations_total', { source: bus })) > applied, "A's message at B");
        expect(await read()).toBe('v1');
      } finally {
        await Promise.all([ca.end(), cb.end()]);
      }
    });
  });
}

replicas('redis', skipRedis ?? skipPg);
replicas('postgres', skipPg);
