import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SidecacheServer } from '../../../src/server.js';
import { connect, pgUnreachable, startPgSidecache, unique } from '../../helpers/pg.js';
import { metric } from '../../helpers/sidecache.js';
import { waitFor } from '../../helpers/wait.js';

const unreachable = await pgUnreachable();

describe.skipIf(unreachable !== undefined)('postgres listener: what invalidates what', () => {
  let server: SidecacheServer;
  let port: number;
  let direct: pg.Client;
  const clients: pg.Client[] = [];
  const base = unique('base');
  const view = unique('view');
  const parted = unique('parted');
  const audit = unique('audit');
  const slow = unique('countries');
  const through = async () => {
    const c = await connect(port);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    ({ server, port } = await startPgSidecache(`    rules:\n      - { tables: ["${audit}"], cache: false }\n      - { tables: ["${slow}"], ttl: 1h }\n`));
    direct = await connect(undefined);
    await direct.query(`
      CREATE TABLE ${base} (id int PRIMARY KEY, v text); INSERT INTO ${base} VALUES (1, 'one');
      CREATE VIEW ${view} AS SELECT id, upper(v) AS v FROM ${base};
      CREATE TABLE ${parted} (id int, v text) PARTITION BY RANGE (id);
      CREATE TABLE ${parted}_a PARTITION OF ${parted} FOR VALUES FROM (0) TO (100);
      INSERT INTO ${parted} VALUES (1, 'p1');
      CREATE TABLE ${audit} (v text); INSERT INTO ${audit} VALUES ('a');
      CREATE TABLE ${slow} (v text); INSERT INTO ${slow} VALUES ('c');`);
  });
  afterAll(async () => {
    for (const c of clients) await c.end().catch(() => undefined);
    await direct.query(`DROP VIEW IF EXISTS ${view}; DROP TABLE IF EXISTS ${base}, ${parted}, ${audit}, ${slow}`);
    await direct.end();
    await server.stop(100);
  });

  const explain = async (sql: string) => (await fetch(`${server.adminUrl}/cache/explain?listener=main&database=test&sql=${encodeURIComponent(sql)}`)).json();

  it('explains: tags through views and partitions, rules, and the reason when not cacheable', async () => {
    expect(await explain(`SELECT * FROM ${view}`)).toMatchObject({ cacheable: true, tags: expect.arrayContaining([`table:${base}`, `table:${view}`]) });
    expect(await explain(`SELECT * FROM ${parted}`)).toMatchObject({ cacheable: true, tags: expect.arrayContaining([`table:${parted}`, `table:${parted}_a`]) });
    expect(await explain(`SELECT * FROM ${audit}`)).toMatchObject({ cacheable: false, reason: `rule for ${audit} says cache: false` });
    expect(await explain(`SELECT * FROM ${slow}`)).toMatchObject({ cacheable: true, ttlMs: 3_600_000 });
    expect(await explain('SELECT now()')).toMatchObject({ cacheable: false, reason: 'calls now, which is not IMMUTABLE' });
    expect(await explain('SELECT * FROM no_such_table_here')).toMatchObject({ cacheable: false, reason: 'unknown relation no_such_table_here' });
    expect((await fetch(`${server.adminUrl}/cache/explain?listener=nope&sql=x`)).status).toBe(404);
  });

  it('a write to a base table invalidates reads of its view; a write to the parent reaches partitions', async () => {
    const via = await through();
    const readView = async () => (await via.query(`SELECT v FROM ${view} WHERE id = 1`)).rows[0].v;
    expect(await readView()).toBe('ONE');
    expect(await readView()).toBe('ONE');
    await via.query(`UPDATE ${base} SET v = 'uno' WHERE id = 1`);
    expect(await readView()).toBe('UNO');
    const readPart = async () => (await via.query(`SELECT v FROM ${parted}_a WHERE id = 1`)).rows[0].v;
    expect(await readPart()).toBe('p1');
    await via.query(`UPDATE ${parted} SET v = 'p2' WHERE id = 1`);
    // The partitions of a written table come from the catalog, asked after the write completes.
    await waitFor(async () => (await readPart()) === 'p2', 'the write to the parent to reach the partition');
  });

  it('invalidates again when a transaction ends (a reader may fill in between)', async () => {
    const writer = await through();
    const reader = await through();
    const read = async () => (await reader.query(`SELECT v FROM ${base} WHERE id = 1`)).rows[0].v;
    await writer.query('BEGIN');
    await writer.query(`UPDATE ${base} SET v = 'in tx' WHERE id = 1`);
    // The reader fills the cache with the committed (old) value while the write is open.
    const before = await read();
    expect(await read()).toBe(before);
    await writer.query('COMMIT');
    expect(await read()).toBe('in tx');
  });

  it('GRANT and unknown DDL invalidate everything of the database; DDL on a table invalidates it', async () => {
    const via = await through();
    const read = async () => (await via.query(`SELECT v FROM ${slow}`)).rows[0].v;
    expect(await read()).toBe('c');
    await direct.query(`UPDATE ${slow} SET v = 'd'`);
    expect(await read()).toBe('c');
    const role = unique('role');
    await direct.query(`CREATE ROLE ${role}`);
    try {
      await via.query(`GRANT SELECT ON ${base} TO ${role}`);
      expect(await read()).toBe('d');
      await direct.query(`UPDATE ${slow} SET v = 'e'`);
      expect(await read()).toBe('d');
      await via.query(`ALTER TABLE ${slow} ADD COLUMN extra int`);
      expect(await read()).toBe('e');
    } finally {
      await direct.query(`REVOKE ALL ON ${base} FROM ${role}; DROP ROLE ${role}`);
    }
  });

  it('a session that calls set_config stops using the cache until DISCARD ALL', async () => {
    const via = await through();
    const read = async () => (await via.query(`SELECT v FROM ${base} WHERE id = 1 AND true`)).rows[0].v;
    const first = await read();
    await read();
    await via.query("SELECT set_config('app.user', '42', false)");
    await direct.query(`UPDATE ${base} SET v = 'tainted' WHERE id = 1`);
    expect(await read()).toBe('tainted');
    await via.query('DISCARD ALL');
    expect(await read()).toBe(first);
  });

  it('coalesces identical concurrent misses across sessions into one upstream query', async () => {
    const sessions = await Promise.all(Array.from({ length: 8 }, () => through()));
    // A function the catalog reports IMMUTABLE, so the statement is cacheable. Each execution
    // counts itself in a sequence, then waits on an advisory lock the test holds until all eight
    // queries are in: the number of executions is the number of upstream queries.
    const fn = unique('held_immutable');
    const runs = unique('runs');
    await direct.query(`CREATE SEQUENCE ${runs};
      CREATE FUNCTION ${fn}(int) RETURNS int IMMUTABLE LANGUAGE plpgsql AS $$ BEGIN PERFORM nextval('${runs}'); PERFORM pg_advisory_xact_lock_shared(hashtext('${fn}')); RETURN $1; END $$`);
    const locker = await connect(undefined);
    await locker.query(`SELECT pg_advisory_lock(hashtext('${fn}'))`);
    try {
      const coalesced = () => metric(server, 'sidecache_coalesced_total', { protocol: 'postgres', listener: 'main' });
      const before = await coalesced();
      const sql = `SELECT ${fn}(7) AS v`;
      const pending = Promise.all(sessions.map((s) => s.query(sql)));
      const held = async () =>
        (await direct.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event = 'advisory' AND query = $1`, [sql])).rows[0].n as number;
      // Every query is in: held at the database, or waiting in sidecache on one that is.
      await waitFor(async () => (await held()) + (await coalesced()) - before === 8, 'all eight queries to arrive');
      await locker.query(`SELECT pg_advisory_unlock(hashtext('${fn}'))`);
      const rows = await pending;
      expect(rows.map((r) => r.rows[0].v)).toEqual(Array(8).fill(7));
      const executions = await direct.query(`SELECT CASE WHEN is_called THEN last_value ELSE 0 END::int AS n FROM ${runs}`);
      expect(executions.rows[0].n).toBe(1);
      expect((await coalesced()) - before).toBe(7);
    } finally {
      await locker.end();
      await direct.query(`DROP FUNCTION ${fn}(int); DROP SEQUENCE ${runs}`);
    }
  });
});

describe.skipIf(unreachable !== undefined)('postgres listener without a catalog', () => {
  it('does not cache statements on relations or with calls it cannot check, and still caches constant ones', async () => {
    const { server, port } = await startPgSidecache('    catalogUrl: "postgres://127.0.0.1:1/none"\n    connectTimeout: 500ms\n');
    const via = await connect(port);
    try {
      const explainTable = await (
        await fetch(`${server.adminUrl}/cache/explain?listener=main&database=test&sql=${encodeURIComponent('SELECT * FROM some_table')}`)
      ).json();
      expect(explainTable).toMatchObject({ cacheable: false, reason: expect.stringMatching(/^the catalog could not be asked/) });
      const explainConst = await (await fetch(`${server.adminUrl}/cache/explain?listener=main&database=test&sql=${encodeURIComponent('SELECT 1, $1')}`)).json();
      expect(explainConst).toMatchObject({ cacheable: true });
      expect((explainConst as { tags: string[] }).tags.filter((t) => t.startsWith('table:'))).toEqual([]);
      // An operator may be a user's (CREATE OPERATOR) that is not IMMUTABLE: without the catalog, not vouched for either.
      const explainOperator = await (
        await fetch(`${server.adminUrl}/cache/explain?listener=main&database=test&sql=${encodeURIComponent('SELECT 1 + $1::int')}`)
      ).json();
      expect(explainOperator).toMatchObject({ cacheable: false });
      // Function volatility comes from the catalog too: without it, even an IMMUTABLE built-in is not vouched for.
      const explainCall = await (
        await fetch(`${server.adminUrl}/cache/explain?listener=main&database=test&sql=${encodeURIComponent('SELECT abs($1::int)')}`)
      ).json();
      expect(explainCall).toMatchObject({ cacheable: false, reason: expect.stringMatching(/^the catalog could not be asked/) });
      expect((await via.query('SELECT 2 AS n')).rows).toEqual([{ n: 2 }]);
    } finally {
      await via.end();
      await server.stop(100);
    }
  });
});
