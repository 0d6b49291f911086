import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installSql, uninstallSql } from '../../src/invalidation/triggers.js';
import type { SidecacheServer } from '../../src/server.js';
import { connect, PG, pgUnreachable, unique } from '../helpers/pg.js';
import { metric, startSidecache } from '../helpers/sidecache.js';
import { waitFor } from '../helpers/wait.js';

const unreachable = await pgUnreachable();

describe.skipIf(unreachable !== undefined)('sidecache sql triggers: writes made directly to the database invalidate', () => {
  const schema = unique('trig');
  const channel = unique('chan');
  let direct: pg.Client;
  let server: SidecacheServer;
  let via: pg.Client;

  beforeAll(async () => {
    direct = await connect(undefined);
    await direct.query(`CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.items (id int PRIMARY KEY, v text); CREATE TABLE ${schema}.other (v text);
      INSERT INTO ${schema}.items VALUES (1, 'one'); INSERT INTO ${schema}.other VALUES ('x');
      CREATE TABLE ${schema}.m (k int, v text) PARTITION BY RANGE (k); CREATE TABLE ${schema}.m_1 PARTITION OF ${schema}.m FOR VALUES FROM (0) TO (100);
      INSERT INTO ${schema}.m VALUES (1, 'first')`);
    // What `sidecache sql triggers --channel C --schema S --all-tables --ddl` prints (cli.test.ts checks that it does).
    await direct.query(installSql({ channel, tables: [], allTables: true, schema, ddl: true }));
    server = await startSidecache(
      `postgres:\n  - { name: main, listen: "127.0.0.1:0", upstream: "postgres://${PG.host}:${PG.port}?sslmode=disable" }\n` +
        `invalidation:\n  - { type: postgres, url: "postgres://${PG.user}@${PG.host}:${PG.port}/${PG.database}", channel: ${channel} }\n`,
      // The partition test needs its reads cached, however loaded the machine: the catalog's answer, not a 100 ms race.
      { planWaitMs: 10_000 },
    );
    via = await connect(server.postgresListeners[0]!.address.port);
  });
  afterAll(async () => {
    await via?.end();
    await server?.stop(100);
    await direct.query(uninstallSql({ channel, tables: [], allTables: false, schema, ddl: true }));
    await direct.query(`DROP SCHEMA ${schema} CASCADE`);
    await direct.end();
  });

  const read = async () => (await via.query(`SELECT v FROM ${schema}.items WHERE id = 1`)).rows[0].v;
  const notified = () => metric(server, 'sidecache_invalidations_total', { source: `postgres:${channel}` });

  it('a direct UPDATE reaches sidecache through NOTIFY', async () => {
    expect(await read()).toBe('one');
    expect(await read()).toBe('one');
    const before = await notified();
    await direct.query(`UPDATE ${schema}.items SET v = 'two' WHERE id = 1`);
    // The trigger's message, not expiry, ends the cached answer: one message from the bus.
    await waitFor(async () => (await notified()) === before + 1, "the trigger's NOTIFY to be applied");
    expect(await read()).toBe('two');
  });

  it("a write made directly to a partition reaches sidecache through the partition's own trigger (issue 17 point 4)", async () => {
    const parent = async () => (await via.query(`SELECT v FROM ${schema}.m WHERE k = 1`)).rows[0].v;
    const partition = async () => (await via.query(`SELECT v FROM ${schema}.m_1 WHERE k = 1`)).rows[0].v;
    const hits = () => metric(server, 'sidecache_requests_total', { protocol: 'postgres', listener: 'main', result: 'hit' });
    for (const read of [parent, partition]) {
      expect(await read()).toBe('first');
      const hit = await hits();
      expect(await read()).toBe('first');
      expect(await hits()).toBe(hit + 1);
    }
    const before = await notified();
    await direct.query(`UPDATE ${schema}.m_1 SET v = 'second' WHERE k = 1`);
    await waitFor(async () => (await notified()) === before + 1, "the partition trigger's NOTIFY to be applied");
    await waitFor(async () => (await parent()) === 'second', 'the read of the parent to answer fresh');
    expect(await partition()).toBe('second');
  });

  it('DDL flushes everything through the event trigger', async () => {
    await read();
    await read();
    const entries = server.store.size;
    expect(entries).toBeGreaterThan(0);
    await direct.query(`ALTER TABLE ${schema}.other ADD COLUMN extra int`);
    await waitFor(() => server.store.size === 0, "the event trigger's flush");
  });
});
