/**
 * Issue 17 point 3: `invalidation[].type: postgres-wal` reads the logical replication stream of a
 * throwaway cluster with wal_level=logical, and every committed write to a table, however it was
 * made, makes a cached read through sidecache answer fresh; a rolled-back one changes nothing.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SidecacheServer } from '../../src/server.js';
import { parseConfig } from '../../src/config/load.js';
import { checkConnect } from '../../src/upstreams/postgres/check-connect.js';
import { clusterUnavailable, type PgCluster, useCluster } from '../helpers/pg-cluster.js';
import { PG, pgUnreachable } from '../helpers/pg.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
import { metric, startSidecache } from '../helpers/sidecache.js';
import { waitFor } from '../helpers/wait.js';

const noCluster = clusterUnavailable() !== undefined;
const noPg = await pgUnreachable();

/** What `sidecache check --connect` prints for one `invalidation[]` entry, and its verdict. */
async function checkBus(entry: string): Promise<{ ok: boolean; out: string }> {
  const config = parseConfig(`invalidation:\n  - ${entry}\n`, 'check.yaml', {});
  const lines: string[] = [];
  const ok = await checkConnect([], {}, (line) => lines.push(line), config.invalidation);
  return { ok, out: lines.join('\n') };
}

const SCHEMA = `
  CREATE TABLE items (id int PRIMARY KEY, v text);
  CREATE TABLE src (id int PRIMARY KEY); CREATE TABLE dst (n int PRIMARY KEY);
  CREATE FUNCTION copy_to_dst() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO dst VALUES (NEW.id); RETURN NULL; END $$;
  CREATE TRIGGER copy_to_dst AFTER INSERT ON src FOR EACH ROW EXECUTE FUNCTION copy_to_dst();
  CREATE TABLE parent (id int PRIMARY KEY); CREATE TABLE child (id int PRIMARY KEY, pid int REFERENCES parent ON DELETE CASCADE, v text);
  CREATE TABLE m (k int PRIMARY KEY, v text) PARTITION BY RANGE (k);
  CREATE TABLE m_1 PARTITION OF m FOR VALUES FROM (0) TO (100);
  CREATE VIEW m_v AS SELECT k, v FROM m;
  CREATE TABLE marker (n serial PRIMARY KEY);
  CREATE TABLE nopk (v text);
  INSERT INTO items VALUES (1, 'one'); INSERT INTO parent VALUES (1); INSERT INTO child VALUES (1, 1, 'kept');
  INSERT INTO m VALUES (1, 'first');`;

describe.skipIf(noCluster)('postgres-wal bus: committed writes invalidate, without triggers', () => {
  const cluster: PgCluster = useCluster({ auth: 'trust', conf: ['wal_level = logical', 'max_replication_slots = 10', 'max_wal_senders = 10'] });
  let server: SidecacheServer;
  let via: pg.Client;
  let direct: pg.Client;
  const bus = 'postgres-wal:sidecache';
  const url = () => `postgres://postgres@127.0.0.1:${cluster.port}/postgres`;

  const sidecache = (extra = '') =>
    startSidecache(
      `postgres:\n  - { name: main, listen: "127.0.0.1:0", upstream: "${url()}?sslmode=disable" }\n` +
        `invalidation:\n  - { type: postgres-wal, url: "${url()}", createPublication: true, heartbeat: 200ms${extra} }\n`,
      { planWaitMs: 10_000 },
    );
  const hits = () => metric(server, 'sidecache_requests_total', { protocol: 'postgres', listener: 'main', result: 'hit' });
  /** The read's answer, after checking that a second read was a hit (the answer is cached). */
  const cached = async (sql: string): Promise<unknown[]> => {
    await via.query(sql);
    const before = await hits();
    const rows = (await via.query(sql)).rows;
    expect(await hits()).toBe(before + 1);
    return rows;
  };
  /** Waits until the bus applied a commit after everything written so far: a write to `marker`. */
  const settled = async () => {
    const before = await metric(server, 'sidecache_invalidations_total', { source: bus });
    await direct.query('INSERT INTO marker DEFAULT VALUES');
    await waitFor(async () => (await metric(server, 'sidecache_invalidations_total', { source: bus })) > before, 'the marker commit to arrive');
  };
  const fresh = async (sql: string, expected: unknown[]) => {
    await waitFor(async () => JSON.stringify((await via.query(sql)).rows) === JSON.stringify(expected), `${sql} to answer fresh`);
  };

  beforeAll(async () => {
    await cluster.admin(SCHEMA);
    direct = new pg.Client({ host: '127.0.0.1', port: cluster.port, user: 'postgres', database: 'postgres' });
    await direct.connect();
  }, 60_000);
  afterAll(async () => {
    await via?.end();
    await server?.stop(100);
    await direct?.end();
  });

  it('check --connect names what is missing (REPLICATION, the publication, replica identities) with the SQL, then says ready', async () => {
    await cluster.admin('CREATE ROLE bob LOGIN');
    const bob = await checkBus(`{ type: postgres-wal, url: "postgres://bob@127.0.0.1:${cluster.port}/postgres", publication: other_pub }`);
    expect(bob.ok).toBe(false);
    expect(bob.out).toContain('wal_level: logical');
    expect(bob.out).toContain('ALTER ROLE "bob" REPLICATION;');
    expect(bob.out).toContain('CREATE PUBLICATION "other_pub" FOR ALL TABLES;');
    expect(bob.out).toContain('public.nopk');
    expect(bob.out).toContain('ALTER TABLE public.nopk REPLICA IDENTITY FULL;');
    const listed = await checkBus(`{ type: postgres-wal, url: "postgres://postgres@127.0.0.1:${cluster.port}/postgres", tables: [items, nopk, m] }`);
    expect(listed.ok).toBe(false);
    expect(listed.out).toContain('CREATE PUBLICATION "sidecache" FOR TABLE items, nopk, m;');
    expect(listed.out).toMatch(/without a replica identity: UPDATE and DELETE on them would fail once the publication exists: public\.nopk\n/);
    const admin = await checkBus(
      `{ type: postgres-wal, url: "postgres://postgres@127.0.0.1:${cluster.port}/postgres", createPublication: true, tables: [items] }`,
    );
    expect(admin).toMatchObject({ ok: true });
    expect(admin.out).toContain('sidecache creates it (createPublication: true): CREATE PUBLICATION "sidecache" FOR TABLE items;');
    // An existing publication that leaves out tables the bus is for: writes to them would never be seen.
    await cluster.admin('CREATE PUBLICATION partial FOR TABLE items, m');
    const partial = await checkBus(`{ type: postgres-wal, url: "postgres://postgres@127.0.0.1:${cluster.port}/postgres", publication: partial }`);
    expect(partial.ok).toBe(false);
    expect(partial.out).toMatch(/publication partial: does not publish [^\n]*public\.src/);
    expect(partial.out).not.toMatch(/does not publish [^\n]*public\.(items|m_1)\b/);
    expect(partial.out).toContain('ALTER PUBLICATION "partial" ADD TABLE ');
    const covered = await checkBus(
      `{ type: postgres-wal, url: "postgres://postgres@127.0.0.1:${cluster.port}/postgres", publication: partial, tables: [items, m] }`,
    );
    expect(covered).toMatchObject({ ok: true });
    expect(covered.out).toContain('publication partial: exists (covers the tables)');
    await cluster.admin('DROP PUBLICATION partial');
    await cluster.admin('DROP ROLE bob');
  });

  it('createPublication refuses while a table it would publish has no replica identity (its UPDATE and DELETE would fail)', async () => {
    server = await sidecache();
    expect(await metric(server, 'sidecache_bus_connected', { bus })).toBe(0);
    expect(server.buses[0]!.reason).toContain('public.nopk');
    expect(server.buses[0]!.reason).toContain('REPLICA IDENTITY FULL');
    expect((await direct.query('SELECT count(*)::int AS n FROM pg_publication')).rows[0].n).toBe(0);
    await direct.query(`UPDATE nopk SET v = 'still writable'`);
    await server.stop(100);
    await direct.query('ALTER TABLE nopk REPLICA IDENTITY FULL');
    server = await sidecache();
    expect(await metric(server, 'sidecache_bus_connected', { bus })).toBe(1);
    via = new pg.Client({ host: '127.0.0.1', port: server.postgresListeners[0]!.address.port, user: 'postgres', database: 'postgres' });
    await via.connect();
  });

  it('INSERT, UPDATE, DELETE and TRUNCATE made directly to the database each invalidate', async () => {
    const sql = 'SELECT id, v FROM items ORDER BY id';
    expect(await cached(sql)).toEqual([{ id: 1, v: 'one' }]);
    await direct.query(`INSERT INTO items VALUES (2, 'two')`);
    await fresh(sql, [
      { id: 1, v: 'one' },
      { id: 2, v: 'two' },
    ]);
    await cached(sql);
    await direct.query(`UPDATE items SET v = 'uno' WHERE id = 1`);
    await fresh(sql, [
      { id: 1, v: 'uno' },
      { id: 2, v: 'two' },
    ]);
    await cached(sql);
    await direct.query('DELETE FROM items WHERE id = 2');
    await fresh(sql, [{ id: 1, v: 'uno' }]);
    await cached(sql);
    await direct.query('TRUNCATE items');
    await fresh(sql, []);
  });

  it("a trigger's write into another table invalidates that table", async () => {
    const sql = 'SELECT count(*)::int AS n FROM dst';
    expect(await cached(sql)).toEqual([{ n: 0 }]);
    await direct.query('INSERT INTO src VALUES (7)');
    await fresh(sql, [{ n: 1 }]);
  });

  it('an ON DELETE CASCADE invalidates the referencing table', async () => {
    const sql = 'SELECT v FROM child';
    expect(await cached(sql)).toEqual([{ v: 'kept' }]);
    await direct.query('DELETE FROM parent WHERE id = 1');
    await fresh(sql, []);
  });

  it('a write into a partition invalidates reads of the partitioned table and of a view over it', async () => {
    const parent = 'SELECT v FROM m ORDER BY k';
    const view = 'SELECT v FROM m_v ORDER BY k';
    expect(await cached(parent)).toEqual([{ v: 'first' }]);
    expect(await cached(view)).toEqual([{ v: 'first' }]);
    await direct.query(`UPDATE m_1 SET v = 'second' WHERE k = 1`);
    await fresh(parent, [{ v: 'second' }]);
    await fresh(view, [{ v: 'second' }]);
  });

  it('a rolled-back transaction invalidates nothing', async () => {
    const sql = 'SELECT id, v FROM items ORDER BY id';
    await direct.query(`INSERT INTO items VALUES (3, 'three')`);
    await fresh(sql, [{ id: 3, v: 'three' }]);
    await cached(sql);
    await direct.query('BEGIN');
    await direct.query(`UPDATE items SET v = 'never' WHERE id = 3`);
    await direct.query('ROLLBACK');
    await settled();
    const before = await hits();
    expect((await via.query(sql)).rows).toEqual([{ id: 3, v: 'three' }]);
    expect(await hits()).toBe(before + 1);
  });

  it('a killed replication connection is a gap: the cache is flushed and the bus comes back', async () => {
    server.store.set('k:other', { body: Buffer.from('x'), ttlMs: 60_000, tags: ['user:1'] });
    await cluster.admin("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name LIKE 'sidecache\\_%'");
    await waitFor(async () => (await metric(server, 'sidecache_bus_gaps_total', { bus })) === 1, 'the gap to be reported');
    expect(server.store.has('k:other')).toBe(false);
    await waitFor(async () => (await metric(server, 'sidecache_bus_connected', { bus })) === 1, 'the bus to be up again');
    await settled();
  });

  it('reports the slot lag, and the temporary slot is gone once sidecache stops', async () => {
    await settled();
    await waitFor(async () => (await server.registry.metrics()).includes(`sidecache_wal_slot_lag_bytes{bus="${bus}"}`), 'a lag sample');
    const slots = async () => (await cluster.admin("SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name LIKE 'sidecache\\_%'"))[0]!.rows[0].n;
    expect(await slots()).toBe(1);
    await via.end();
    await server.stop(1000);
    await waitFor(async () => (await slots()) === 0, 'the temporary slot to be dropped');
    server = await sidecache();
    via = new pg.Client({ host: '127.0.0.1', port: server.postgresListeners[0]!.address.port, user: 'postgres', database: 'postgres' });
    await via.connect();
  });

  it('a named slot resumes without a flush, and what was committed meanwhile still invalidates', async () => {
    await via.end();
    await server.stop(100);
    // publish: false: with replicas publishing on the bus, a resume is a gap (stream-outbox-window.test.ts).
    server = await sidecache(', slot: sc_named, publish: false');
    via = new pg.Client({ host: '127.0.0.1', port: server.postgresListeners[0]!.address.port, user: 'postgres', database: 'postgres' });
    await via.connect();
    const named = 'postgres-wal:sc_named';
    const sql = 'SELECT id, v FROM items ORDER BY id';
    await cached(sql);
    server.store.set('k:other', { body: Buffer.from('x'), ttlMs: 60_000, tags: ['user:1'] });
    await cluster.admin("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = 'sc_named'");
    await direct.query(`UPDATE items SET v = 'while away' WHERE id = 3`);
    await fresh(sql, [{ id: 3, v: 'while away' }]);
    await waitFor(async () => (await metric(server, 'sidecache_bus_connected', { bus: named })) === 1, 'the bus to be up again');
    expect(await metric(server, 'sidecache_bus_gaps_total', { bus: named })).toBe(0);
    expect(server.store.has('k:other')).toBe(true);
    await via.end();
    await server.stop(100);
    server = await sidecache();
    via = new pg.Client({ host: '127.0.0.1', port: server.postgresListeners[0]!.address.port, user: 'postgres', database: 'postgres' });
    await via.connect();
    await cluster.admin("SELECT pg_drop_replication_slot('sc_named')");
  });
  it.each(['toClient', 'toServer'] as const)(
    'a half-open replication connection (stalled %s) is noticed by the heartbeat: a gap, then streaming again',
    async (direction) => {
      const proxy = await startTcpProxy({ host: '127.0.0.1', port: cluster.port });
      const other = await startSidecache(
        `invalidation:\n  - { type: postgres-wal, url: "postgres://postgres@127.0.0.1:${proxy.port}/postgres", heartbeat: 100ms }\n`,
      );
      try {
        expect(await metric(other, 'sidecache_bus_connected', { bus })).toBe(1);
        other.store.set('k:stale', { body: Buffer.from('x'), ttlMs: 60_000, tags: ['table:items'] });
        proxy.stall(direction);
        await waitFor(async () => (await metric(other, 'sidecache_bus_gaps_total', { bus })) === 1, 'the missed heartbeat, and the reconnect');
        expect(other.store.has('k:stale')).toBe(false);
        await waitFor(async () => (await metric(other, 'sidecache_bus_connected', { bus })) === 1, 'the bus to be up again');
        other.store.set('k:after', { body: Buffer.from('y'), ttlMs: 60_000, tags: ['table:items'] });
        await direct.query(`UPDATE items SET v = v WHERE id = 3`);
        await waitFor(() => !other.store.has('k:after'), 'commits after the reconnect to invalidate');
      } finally {
        await other.stop(100);
        await proxy.close();
      }
    },
  );
});

describe.skipIf(noPg !== undefined)('check --connect on a server without logical decoding', () => {
  it('says wal_level must be logical, and how', async () => {
    const { ok, out } = await checkBus(`{ type: postgres-wal, url: "postgres://${PG.user}@${PG.host}:${PG.port}/${PG.database}" }`);
    const level = /wal_level: (\w+)/.exec(out)?.[1];
    // The machine's server may be set up for logical decoding already; then there is nothing to say.
    if (level !== 'logical') {
      expect(ok).toBe(false);
      expect(out).toContain('ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL');
    }
  });
});
