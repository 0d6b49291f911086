/**
 * Default deny: a statement is cached only when everything it reaches is known to the catalog and
 * IMMUTABLE for the key. Each case here was cached before (a wrong or changing answer served from
 * memory); each now bypasses the cache with a reason /cache/explain shows.
 */
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type pg from 'pg';
import { parseConfig } from '../../../src/config/load.js';
import { Logger } from '../../../src/log.js';
import { SidecacheServer } from '../../../src/server.js';
import { Catalog } from '../../../src/upstreams/postgres/catalog.js';
import { DirectCatalog } from '../../../src/upstreams/postgres/catalog-direct.js';
import { loadParser } from '../../../src/upstreams/postgres/classify.js';
import { Planner } from '../../../src/upstreams/postgres/planner.js';
import { connect, PG, pgUnreachable, unique, withPgSidecache } from '../../helpers/pg.js';
import { waitFor } from '../../helpers/wait.js';

const unreachable = await pgUnreachable();

function planner(extra = ''): Planner {
  const config = parseConfig(`postgres:\n  - { name: main, listen: "127.0.0.1:0", upstream: "postgres://${PG.host}:${PG.port}"${extra} }\n`, 'test.yaml', {})
    .postgres[0]!;
  const catalog = new Catalog(new DirectCatalog((database, user) => ({ host: PG.host, port: PG.port, user, database }), new Logger({ level: 'silent' })));
  onTestFinished(() => catalog.close());
  return new Planner(config, catalog);
}

const plan = (p: Planner, sql: string) => p.plan(PG.database, PG.user, sql);

describe.skipIf(unreachable !== undefined)('what may be cached: default deny', () => {
  const schema = unique('cls');
  let direct: pg.Client;
  beforeAll(async () => {
    await loadParser();
    direct = await connect(undefined);
    await direct.query(`CREATE SCHEMA ${schema};
      CREATE SEQUENCE ${schema}.seq1;
      CREATE TABLE ${schema}.t (a int);
      INSERT INTO ${schema}.t VALUES (1);
      CREATE VIEW ${schema}.v_next AS SELECT nextval('${schema}.seq1') AS n;
      CREATE VIEW ${schema}.v_clock AS SELECT clock_timestamp() AS c;
      CREATE VIEW ${schema}.v_random AS SELECT random() AS r;
      CREATE VIEW ${schema}.v_of_v AS SELECT n FROM ${schema}.v_next;
      CREATE VIEW ${schema}.v_plain AS SELECT a FROM ${schema}.t WHERE a > 0;
      CREATE VIEW ${schema}.v_system AS SELECT relname FROM pg_class;
      CREATE FUNCTION ${schema}.bump(${schema}.t) RETURNS bigint VOLATILE LANGUAGE sql AS $$SELECT nextval('${schema}.seq1')$$;
      CREATE FUNCTION ${schema}.volop(int, int) RETURNS bool VOLATILE LANGUAGE sql AS 'SELECT random() < 2';
      CREATE OPERATOR ${schema}.=== (procedure = ${schema}.volop, leftarg = int, rightarg = int);
      CREATE FUNCTION ${schema}.reverse(int) RETURNS int VOLATILE LANGUAGE sql AS 'SELECT $1';
      CREATE TYPE ${schema}.tick;
      CREATE FUNCTION ${schema}.tick_in(cstring) RETURNS ${schema}.tick VOLATILE STRICT LANGUAGE internal AS 'int4in';
      CREATE FUNCTION ${schema}.tick_out(${schema}.tick) RETURNS cstring IMMUTABLE STRICT LANGUAGE internal AS 'int4out';
      CREATE TYPE ${schema}.tick (input = ${schema}.tick_in, output = ${schema}.tick_out, like = int4);
      CREATE TYPE ${schema}.wrapped AS (v int);
      CREATE FUNCTION ${schema}.wrap(int) RETURNS ${schema}.wrapped VOLATILE LANGUAGE sql AS 'SELECT ROW($1)::${schema}.wrapped';
      CREATE CAST (int AS ${schema}.wrapped) WITH FUNCTION ${schema}.wrap(int);
      CREATE TABLE ${schema}."Secrets" (a int);
      CREATE TABLE ${schema}.qualified (a int);
      CREATE TABLE ${schema}.guarded (a int);
      ALTER TABLE ${schema}.guarded ENABLE ROW LEVEL SECURITY;
      CREATE TABLE ${schema}.forced (a int);
      ALTER TABLE ${schema}.forced FORCE ROW LEVEL SECURITY;
      CREATE VIEW ${schema}.over_guarded AS SELECT a FROM ${schema}.guarded;`);
  });
  afterAll(async () => {
    await direct?.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await direct?.end();
  });

  it('issue 15: texts that differ only in constants share a plan by shape, never with a constant that reads the clock', async () => {
    const p = planner();
    expect(await plan(p, `SELECT a FROM ${schema}.t WHERE '2000-01-01'::date > '1999-12-31'`)).toMatchObject({ cacheable: true });
    expect(await plan(p, `SELECT a FROM ${schema}.t WHERE a = 1`)).toMatchObject({ cacheable: true });
    expect(p.peek(PG.database, PG.user, `SELECT a FROM ${schema}.t WHERE a = 2`)).toMatchObject({ cacheable: true });
    // Same shape but for the constant: 'today' (or 'to' 'day' joined by the lexer) reads the clock.
    for (const sql of [
      `SELECT a FROM ${schema}.t WHERE 'today'::date > '1999-12-31'`,
      `SELECT a FROM ${schema}.t WHERE '2000-01-01'::date > 'TODAY'`,
      `SELECT a FROM ${schema}.t WHERE 'to'\n'day'::date > '1999-12-31'`,
      // The date/time input reads a run of letters as a field: PostgreSQL reads 'today_' as today.
      `SELECT a FROM ${schema}.t WHERE 'today_'::date > '1999-12-31'`,
    ]) {
      expect(await plan(p, sql), sql).toMatchObject({ cacheable: false, reason: 'reads the current time' });
    }
    // A write of the same shape as a cached read is classified on its own.
    expect(p.classify(`SELECT a FROM ${schema}.t WHERE a = 3 FOR UPDATE`)).toMatchObject({ cacheable: false });
  });

  it('a view over nextval(), clock_timestamp() or random(), or a view of such a view, is not cached: every read through sidecache changes', async () => {
    const p = planner();
    for (const view of ['v_next', 'v_clock', 'v_random', 'v_of_v']) {
      const answer = await plan(p, `SELECT * FROM ${schema}.${view}`);
      expect(answer, view).toMatchObject({ cacheable: false });
      // nextval('seq1') is also a dependency of the view on the sequence, found first.
      expect(answer.reason, view).toMatch(/^(the view .* (calls|is not cacheable)|reads the sequence)/);
    }
    expect(await plan(p, `SELECT * FROM ${schema}.v_plain`)).toMatchObject({ cacheable: true });
    // pg_depend does not list the system catalogs (they are pinned): the definition names them.
    expect(await plan(p, `SELECT * FROM ${schema}.v_system`)).toMatchObject({
      cacheable: false,
      reason: `the view ${schema}.v_system reads the system catalog (pg_catalog.pg_class)`,
    });
    await withPgSidecache(async (port) => {
      const via = await connect(port);
      try {
        const first = (await via.query(`SELECT n FROM ${schema}.v_next`)).rows[0].n;
        const second = (await via.query(`SELECT n FROM ${schema}.v_next`)).rows[0].n;
        expect(Number(second)).toBeGreaterThan(Number(first));
      } finally {
        await via.end();
      }
    });
  });

  it('volatile functions reached without a call: attribute notation, an operator, a user overload of a built-in name, a type input, a cast', async () => {
    const p = planner();
    expect(await plan(p, `SELECT t.bump FROM ${schema}.t`)).toMatchObject({ cacheable: false, reason: 'calls bump, which is not IMMUTABLE' });
    expect(await plan(p, `SELECT (t).bump FROM ${schema}.t`)).toMatchObject({ cacheable: false, reason: 'calls bump, which is not IMMUTABLE' });
    expect(await plan(p, `SELECT t.a FROM ${schema}.t`)).toMatchObject({ cacheable: true });
    expect(await plan(p, `SELECT a FROM ${schema}.t WHERE a OPERATOR(${schema}.===) 1`)).toMatchObject({
      cacheable: false,
      reason: 'uses the operator ===, which is not IMMUTABLE',
    });
    expect(await plan(p, `SELECT a FROM ${schema}.t WHERE a = 1 AND a + 1 > 0`)).toMatchObject({ cacheable: true });
    expect(await plan(p, `SELECT reverse(a) FROM ${schema}.t`)).toMatchObject({ cacheable: false, reason: 'calls reverse, which is not IMMUTABLE' });
    expect(await plan(p, `SELECT reverse('abc')`)).toMatchObject({ cacheable: false, reason: 'calls reverse, which is not IMMUTABLE' });
    expect(await plan(p, `SELECT pg_catalog.reverse('abc')`)).toMatchObject({ cacheable: true });
    expect(await plan(p, `SELECT '7'::${schema}.tick`)).toMatchObject({ cacheable: false, reason: 'casts to tick, whose input or cast is not IMMUTABLE' });
    expect(await plan(p, `SELECT 7::${schema}.wrapped`)).toMatchObject({ cacheable: false, reason: 'casts to wrapped, whose input or cast is not IMMUTABLE' });
    expect(await plan(p, `SELECT a::bigint FROM ${schema}.t`)).toMatchObject({ cacheable: true });
  });

  it('time words in any date/time literal, and casts whose value depends on the catalog', async () => {
    const p = planner();
    for (const sql of [
      "SELECT '{now}'::timestamptz[]",
      "SELECT '[now,infinity)'::tstzrange",
      "SELECT 'today 00:00'::timestamp",
      "SELECT 'tomorrow'::date",
      "SELECT 'Yesterday'::date",
      `SELECT a FROM ${schema}.t WHERE 'now' > '2020-01-01'::timestamptz`,
    ]) {
      expect(await plan(p, sql), sql).toMatchObject({ cacheable: false, reason: 'reads the current time' });
    }
    expect(await plan(p, `SELECT '${schema}.t'::regclass`)).toMatchObject({
      cacheable: false,
      reason: 'casts to regclass, whose value depends on the catalog',
    });
    expect(await plan(p, "SELECT 'now'::text, '2020-01-01'::date")).toMatchObject({ cacheable: true });
  });

  it('SELECT last_value FROM a sequence is never cached', async () => {
    const p = planner();
    expect(await plan(p, `SELECT last_value FROM ${schema}.seq1`)).toMatchObject({ cacheable: false, reason: `reads the sequence ${schema}.seq1` });
    await withPgSidecache(async (port) => {
      const via = await connect(port);
      try {
        const before = (await via.query(`SELECT last_value FROM ${schema}.seq1`)).rows[0].last_value;
        await direct.query(`SELECT nextval('${schema}.seq1'), nextval('${schema}.seq1')`);
        expect(Number((await via.query(`SELECT last_value FROM ${schema}.seq1`)).rows[0].last_value)).toBeGreaterThan(Number(before));
      } finally {
        await via.end();
      }
    });
  });

  it('a table with row-level security (enabled or forced), or a view over one, is not cached', async () => {
    const p = planner();
    expect(await plan(p, `SELECT a FROM ${schema}.guarded`)).toMatchObject({ cacheable: false, reason: `${schema}.guarded has row-level security` });
    expect(await plan(p, `SELECT a FROM ${schema}.forced`)).toMatchObject({ cacheable: false, reason: `${schema}.forced has row-level security` });
    expect(await plan(p, `SELECT a FROM ${schema}.over_guarded`)).toMatchObject({ cacheable: false, reason: `${schema}.guarded has row-level security` });
  });

  it('rules[].tables match mixed-case and schema-qualified names', async () => {
    const p = planner(`, rules: [{ tables: ['"Secrets"'], cache: false }, { tables: ['${schema}.qualified'], cache: false }]`);
    expect(await plan(p, `SELECT a FROM ${schema}."Secrets"`)).toMatchObject({ cacheable: false, reason: 'rule for "Secrets" says cache: false' });
    expect(await plan(p, `SELECT a FROM ${schema}.qualified`)).toMatchObject({ cacheable: false, reason: `rule for ${schema}.qualified says cache: false` });
    expect(await plan(p, `SELECT a FROM ${schema}.t`)).toMatchObject({ cacheable: true });
  });

  it('a rule naming a table that does not exist is reported with the first session, with its key path', async () => {
    const lines: string[] = [];
    const config = parseConfig(
      `admin: { listen: "127.0.0.1:0" }\npostgres:\n  - name: main\n    listen: "127.0.0.1:0"\n    upstream: "postgres://${PG.user}@${PG.host}:${PG.port}/${PG.database}"\n    rules:\n      - { tables: [${schema}.t] }\n      - { tables: [nope_${schema}] }\n`,
      'test.yaml',
      {},
    );
    const server = new SidecacheServer(config, { log: new Logger({ level: 'warn', sink: (line) => void lines.push(line) }) });
    await server.start();
    try {
      // The catalog is asked in band: the check runs with the first client session of the database.
      const client = await connect(server.postgresListeners[0]!.address.port);
      await client.end();
      await waitFor(() => lines.some((l) => l.includes('postgres[main].rules[1].tables')), 'the warning');
      const line = lines.find((l) => l.includes('postgres[main].rules[1].tables'))!;
      expect(line).toContain(`no table \\"nope_${schema}\\" in database \\"${PG.database}\\"`);
      expect(lines.some((l) => l.includes('rules[0]'))).toBe(false);
    } finally {
      await server.stop(100);
    }
  });

  it('an explanation is not remembered for sessions: asking (as any user) never changes what they cache', async () => {
    const p = planner();
    const sql = `SELECT a FROM ${schema}.t WHERE a = 41`;
    expect(await p.explain(PG.database, 'no_such_role_anywhere', sql)).toMatchObject({
      cacheable: false,
      reason: expect.stringMatching(/^the catalog could not be asked/),
    });
    expect(p.peek(PG.database, PG.user, sql)).toBeUndefined();
  });

  it("/cache/explain without an admin token answers only as the listener's own catalog user: naming another user is refused", async () => {
    await withPgSidecache(async (_port, server) => {
      const ask = (params: string) => fetch(`${server.adminUrl}/cache/explain?listener=main&sql=${encodeURIComponent('SELECT 1')}${params}`);
      expect((await ask('')).status).toBe(200);
      expect((await ask(`&database=${PG.database}`)).status).toBe(200);
      const other = await ask('&user=someone_else');
      expect(other.status).toBe(403);
      expect(((await other.json()) as { error: string }).error).toMatch(/admin\.token/);
    });
  });
});
