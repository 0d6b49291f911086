/**
 * A write is visible to its own session before the next answer: every table it reaches
 * (partitions and parents, views, ON DELETE CASCADE children, TRUNCATE … CASCADE) is invalidated
 * before sidecache forwards the client's next message. No sleep, no poll: the very next query of
 * the same session must see the new data.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { connect, pgUnreachable, startPgSidecache, unique } from '../../helpers/pg.js';
import { metric } from '../../helpers/sidecache.js';
import type { SidecacheServer } from '../../../src/server.js';

const unreachable = await pgUnreachable();

describe.skipIf(unreachable !== undefined)('what a write reaches', () => {
  const s = unique('reach');
  let direct: pg.Client;
  let server: SidecacheServer;
  let via: pg.Client;
  /** Reads twice through sidecache (the second from the cache), returns the count. */
  const cachedCount = async (sql: string): Promise<number> => {
    await via.query(sql);
    return Number((await via.query(sql)).rows[0].n);
  };
  const count = async (sql: string): Promise<number> => Number((await via.query(sql)).rows[0].n);

  beforeAll(async () => {
    direct = await connect(undefined);
    await direct.query(`CREATE SCHEMA ${s};
      CREATE TABLE ${s}.parted (k int, v int) PARTITION BY LIST (k);
      CREATE TABLE ${s}.part1 PARTITION OF ${s}.parted FOR VALUES IN (1);
      CREATE TABLE ${s}.part2 PARTITION OF ${s}.parted FOR VALUES IN (2);
      CREATE TABLE ${s}.base (id int PRIMARY KEY, v int);
      INSERT INTO ${s}.base VALUES (1, 1);
      CREATE VIEW ${s}.over AS SELECT id, v FROM ${s}.base;
      CREATE TABLE ${s}.pa (id int PRIMARY KEY);
      CREATE TABLE ${s}.ch (id int, pa int REFERENCES ${s}.pa ON DELETE CASCADE);
      CREATE TABLE ${s}.pb (id int PRIMARY KEY);
      CREATE TABLE ${s}.cb (id int, pb int REFERENCES ${s}.pb);
      CREATE TABLE ${s}.ex (v int); INSERT INTO ${s}.ex VALUES (1);
      CREATE TABLE ${s}.tx (v int); INSERT INTO ${s}.tx VALUES (1);
      CREATE TABLE ${s}.old (v int); INSERT INTO ${s}.old VALUES (1), (2);
      CREATE SEQUENCE ${s}.seq;
      CREATE TABLE ${s}.counter (n int); INSERT INTO ${s}.counter VALUES (0);
      CREATE FUNCTION ${s}.bump() RETURNS int VOLATILE LANGUAGE sql AS $$UPDATE ${s}.counter SET n = n + 1 RETURNING n$$;
      CREATE TABLE ${s}.shown (v int); INSERT INTO ${s}.shown VALUES (1);
      CREATE VIEW ${s}.shifting AS SELECT v FROM ${s}.shown;`);
    ({ server } = await startPgSidecache());
    via = await connect(server.postgresListeners[0]!.address.port);
  });
  afterAll(async () => {
    await via?.end();
    await server?.stop(100);
    await direct?.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
    await direct?.end();
  });

  it('a write to a partition invalidates reads of its parent, and a write to the parent reads of the partition', async () => {
    expect(await cachedCount(`SELECT count(*) AS n FROM ${s}.parted`)).toBe(0);
    expect(await cachedCount(`SELECT count(*) AS n FROM ${s}.part2`)).toBe(0);
    await via.query(`INSERT INTO ${s}.part1 VALUES (1, 1)`);
    expect(await count(`SELECT count(*) AS n FROM ${s}.parted`)).toBe(1);
    await via.query(`INSERT INTO ${s}.parted VALUES (2, 1)`);
    expect(await count(`SELECT count(*) AS n FROM ${s}.part2`)).toBe(1);
  });

  it('a write to a base table invalidates a view over it, and a write through the view the base table', async () => {
    expect(await cachedCount(`SELECT sum(v) AS n FROM ${s}.over`)).toBe(1);
    await via.query(`UPDATE ${s}.base SET v = 2`);
    expect(await count(`SELECT sum(v) AS n FROM ${s}.over`)).toBe(2);
    expect(await cachedCount(`SELECT sum(v) AS n FROM ${s}.base`)).toBe(2);
    await via.query(`UPDATE ${s}.over SET v = 3`);
    expect(await count(`SELECT sum(v) AS n FROM ${s}.base`)).toBe(3);
  });

  it('ON DELETE CASCADE invalidates the referencing table', async () => {
    await direct.query(`INSERT INTO ${s}.pa VALUES (1); INSERT INTO ${s}.ch VALUES (1, 1)`);
    expect(await cachedCount(`SELECT count(*) AS n FROM ${s}.ch`)).toBe(1);
    await via.query(`DELETE FROM ${s}.pa WHERE id = 1`);
    expect(await count(`SELECT count(*) AS n FROM ${s}.ch`)).toBe(0);
  });

  it('TRUNCATE parent CASCADE invalidates the referencing table', async () => {
    await direct.query(`INSERT INTO ${s}.pb VALUES (1); INSERT INTO ${s}.cb VALUES (1, 1)`);
    expect(await cachedCount(`SELECT count(*) AS n FROM ${s}.cb`)).toBe(1);
    await via.query(`TRUNCATE ${s}.pb CASCADE`);
    expect(await count(`SELECT count(*) AS n FROM ${s}.cb`)).toBe(0);
  });

  it('EXPLAIN ANALYZE of a write is a write', async () => {
    expect(await cachedCount(`SELECT sum(v) AS n FROM ${s}.ex`)).toBe(1);
    await via.query(`EXPLAIN ANALYZE UPDATE ${s}.ex SET v = 5`);
    expect(await count(`SELECT sum(v) AS n FROM ${s}.ex`)).toBe(5);
  });

  it('COMMIT AND CHAIN commits: what another session cached meanwhile is dropped', async () => {
    const writer = await connect(server.postgresListeners[0]!.address.port);
    try {
      await writer.query('BEGIN');
      await writer.query(`UPDATE ${s}.tx SET v = 7`);
      // Another session caches the data as it was before the commit.
      expect(await cachedCount(`SELECT sum(v) AS n FROM ${s}.tx`)).toBe(1);
      await writer.query('COMMIT AND CHAIN');
      expect(await count(`SELECT sum(v) AS n FROM ${s}.tx`)).toBe(7);
      await writer.query('COMMIT');
    } finally {
      await writer.end();
    }
  });

  it('ALTER TABLE RENAME, then a new table with the old name: the old name answers from the new table', async () => {
    expect(await cachedCount(`SELECT count(*) AS n FROM ${s}.old`)).toBe(2);
    await via.query(`ALTER TABLE ${s}.old RENAME TO gone`);
    await via.query(`CREATE TABLE ${s}.old (v int)`);
    expect(await count(`SELECT count(*) AS n FROM ${s}.old`)).toBe(0);
  });

  it('SELECT last_value FROM a sequence is never cached', async () => {
    await via.query(`SELECT last_value FROM ${s}.seq`);
    await via.query(`SELECT nextval('${s}.seq')`);
    await via.query(`SELECT nextval('${s}.seq')`);
    expect(Number((await via.query(`SELECT last_value FROM ${s}.seq`)).rows[0].last_value)).toBe(2);
  });

  it('a cluster-wide statement (GRANT of role membership) invalidates entries of another database', async () => {
    const role = unique('role');
    await direct.query(`CREATE ROLE ${role}`);
    const other = await connect(server.postgresListeners[0]!.address.port, { database: 'postgres' });
    try {
      const sql = `SELECT 1 + 1 AS n, '${role}' AS r`;
      const hits = () => metric(server, 'sidecache_requests_total', { protocol: 'postgres', listener: 'main', result: 'hit' });
      await other.query(sql);
      const before = await hits();
      await other.query(sql);
      expect(await hits()).toBe(before + 1);
      await via.query(`GRANT pg_read_all_data TO ${role}`);
      await other.query(sql);
      expect(await hits()).toBe(before + 1);
    } finally {
      await other.end();
      await direct.query(`DROP ROLE IF EXISTS ${role}`);
    }
  });

  it('a SELECT that calls a user function that is not IMMUTABLE may write: the database is invalidated', async () => {
    expect(await cachedCount(`SELECT n FROM ${s}.counter`)).toBe(0);
    await via.query(`SELECT ${s}.bump()`);
    expect(await count(`SELECT n FROM ${s}.counter`)).toBe(1);
  });

  it('an invalidation from elsewhere (admin, a bus) drops the plans of its tables: a view redefined outside sidecache is resolved again', async () => {
    const sql = `SELECT sum(v) AS n FROM ${s}.shifting`;
    expect(await cachedCount(sql)).toBe(1);
    await direct.query(`CREATE TABLE ${s}.other (v int); INSERT INTO ${s}.other VALUES (5);
      CREATE OR REPLACE VIEW ${s}.shifting AS SELECT v FROM ${s}.other`);
    const posted = await fetch(`${server.adminUrl}/invalidate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ tables: ['shifting'] }),
    });
    expect(posted.status).toBe(200);
    expect(await cachedCount(sql)).toBe(5);
    // The entry carries the tags of the view's new definition.
    await via.query(`UPDATE ${s}.other SET v = 6`);
    expect(await count(sql)).toBe(6);
  });
});
