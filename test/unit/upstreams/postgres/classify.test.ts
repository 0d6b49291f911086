import { beforeAll, describe, expect, it } from 'vitest';
import { classify, loadParser } from '../../../../src/upstreams/postgres/classify.js';

beforeAll(() => loadParser());

describe('classify (libpg-query)', () => {
  it('accepts single read-only SELECTs: WITH of selects, VALUES, TABLE', () => {
    for (const sql of [
      'SELECT * FROM a WHERE id = $1',
      'WITH x AS (SELECT 1) SELECT * FROM x JOIN b ON true',
      'VALUES (1), (2)',
      'TABLE a',
      'SELECT lower(name) FROM s.users',
    ]) {
      expect(classify(sql)).toMatchObject({ cacheable: true });
    }
    // x is the CTE here, but a relation named x would count too (where a CTE is visible depends on scope).
    expect(classify('WITH x AS (SELECT 1) SELECT * FROM x JOIN b ON true').reads).toEqual([
      { schema: undefined, name: 'x', maybeCte: true },
      { schema: undefined, name: 'b' },
    ]);
    expect(classify('SELECT lower(name) FROM s.users').reads).toEqual([{ schema: 's', name: 'users' }]);
  });

  it('refuses what may differ from run to run, with the reason', () => {
    const reasons: Record<string, string> = {
      'SELECT * FROM t FOR UPDATE': 'has a locking clause',
      'SELECT * INTO x FROM t': 'is SELECT INTO',
      'SELECT current_timestamp': 'reads the current time',
      "SELECT 'now'::timestamptz": 'reads the current time',
      'SELECT * FROM t TABLESAMPLE SYSTEM (10)': 'uses TABLESAMPLE',
      'SELECT 1; SELECT 2': 'several statements',
      'SELECT * FROM pg_catalog.pg_class': 'reads the system catalog (pg_catalog.pg_class)',
      'SELECT * FROM pg_toast.pg_toast_1259': 'reads the system catalog (pg_toast.pg_toast_1259)',
      'SHOW search_path': 'VariableShowStmt is not a SELECT',
      'EXPLAIN SELECT 1': 'ExplainStmt is not a SELECT',
      'SELEC 1': 'does not parse',
    };
    for (const [sql, reason] of Object.entries(reasons)) expect([sql, classify(sql).reason]).toEqual([sql, reason]);
  });

  it('lists every call, built-ins included, by name and argument count, for the catalog to check', () => {
    expect(classify('SELECT abs(x), lower(y), count(*) FROM t').functions).toEqual(['abs/1', 'lower/1', 'count/0']);
    expect(classify('SELECT now(), random(), my.fn(1) FROM t').functions).toEqual(['now/0', 'random/0', 'my.fn/1']);
    // Overloads count by arity: length(text) and length(bytea, name) are told apart.
    expect(classify('SELECT length(v), avg(x), max(v), length(v) FROM t').functions).toEqual(['length/1', 'avg/1', 'max/1']);
    expect(classify("SELECT length(v, 'UTF8'), pg_catalog.concat(a, b) FROM t").functions).toEqual(['length/2', 'pg_catalog.concat/2']);
  });

  it('names what writes touch, and what they do to the session', () => {
    expect(classify('INSERT INTO s.a VALUES (1)').writes).toEqual([{ schema: 's', name: 'a' }]);
    expect(classify('UPDATE a SET x = 1').writes).toEqual([{ schema: undefined, name: 'a' }]);
    expect(classify('WITH d AS (DELETE FROM a RETURNING *) SELECT * FROM d')).toMatchObject({ cacheable: false, reason: 'data-modifying WITH' });
    expect(classify('TRUNCATE a, b').writes.map((w) => w.name)).toEqual(['a', 'b']);
    expect(classify('COPY a FROM STDIN').writes.map((w) => w.name)).toEqual(['a']);
    expect(classify('COPY a TO STDOUT').writes).toEqual([]);
    expect(classify('ALTER TABLE a ADD COLUMN c int').writes.map((w) => w.name)).toEqual(['a']);
    expect(classify('DROP TABLE a, s.b').writes.map((w) => w.name)).toEqual(['a', 'b']);
    for (const sql of [
      'GRANT SELECT ON a TO r',
      'ALTER ROLE r SET search_path = x',
      'CREATE POLICY p ON a USING (true)',
      'CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$',
      'DO $$ BEGIN END $$',
    ]) {
      expect([sql, classify(sql).invalidatesAll]).toEqual([sql, true]);
    }
    expect(classify('SET search_path TO x').session).toBe('set');
    expect(classify('SET ROLE r').session).toBe('set');
    expect(classify('RESET ALL').session).toBe('reset');
    expect(classify('DISCARD ALL').session).toBe('reset');
    expect(classify("SELECT set_config('a.b', '1', false)").session).toBe('taint');
    expect(classify('CREATE TEMP TABLE t (a int)').session).toBe('taint');
    expect(classify('BEGIN').transaction).toBe(true);
  });
});

describe('classify: default deny', () => {
  it('refuses time words in any literal that is not plain text, and casts whose value depends on the catalog', () => {
    for (const sql of [
      "SELECT '{now}'::timestamptz[]",
      "SELECT '[now,infinity)'::tstzrange",
      "SELECT 'today 00:00'::timestamp",
      "SELECT 'TOMORROW'::date",
      "SELECT * FROM t WHERE at > 'yesterday'",
      "SELECT 'now'::text::timestamptz",
    ]) {
      expect([sql, classify(sql).reason]).toEqual([sql, 'reads the current time']);
    }
    expect(classify("SELECT 'now'::text, 'nowhere', '2020-01-01'::date").cacheable).toBe(true);
    const computed = "casts a computed value to a date/time type (text such as 'now' would read the clock)";
    for (const sql of [
      'SELECT s::timestamptz FROM t',
      "SELECT ('n' || 'ow')::date",
      'SELECT CAST(s AS time with time zone[]) FROM t',
      'SELECT s::text::tstzrange FROM t',
      'SELECT at::date FROM t',
    ]) {
      expect([sql, classify(sql).reason]).toEqual([sql, computed]);
    }
    expect(classify("SELECT '2020-01-01'::text::date, $1::timestamptz, NULL::time").cacheable).toBe(true);
    expect(classify("SELECT 't'::regclass").reason).toBe('casts to regclass, whose value depends on the catalog');
    expect(classify('SELECT x::regtype FROM t').reason).toBe('casts to regtype, whose value depends on the catalog');
  });

  it('lists operators and names that attribute notation may turn into calls, for the catalog to check', () => {
    const c = classify('SELECT t.f, (t).g, a OPERATOR(s.===) 1, b BETWEEN 1 AND 2 FROM t ORDER BY a USING <');
    expect(c.operators.sort()).toEqual(['<', '<=', '>=', 's.==='].sort());
    expect(c.attributes.sort()).toEqual(['f', 'g']);
  });

  it('refuses parse nodes it does not check', () => {
    expect(classify("SELECT xmlparse(document '<a/>')").reason).toBe('uses XmlExpr, which sidecache does not check');
  });

  it('EXPLAIN of a write is the write; COMMIT AND CHAIN commits; roles and databases reach every database', () => {
    expect(classify('EXPLAIN ANALYZE UPDATE a SET x = 1').writes.map((w) => w.name)).toEqual(['a']);
    expect(classify('EXPLAIN SELECT 1').writes).toEqual([]);
    expect(classify('EXPLAIN ANALYZE SELECT f(1)').functions).toEqual(['f/1']);
    expect(classify('COMMIT AND CHAIN')).toMatchObject({ transaction: true, commits: true });
    expect(classify('BEGIN').commits).toBe(false);
    expect(classify("COMMIT PREPARED 'x'").invalidatesAll).toBe(true);
    expect(classify('TRUNCATE a CASCADE').cascade).toBe(true);
    for (const sql of [
      'GRANT r TO u',
      'ALTER ROLE r NOSUPERUSER',
      'CREATE DATABASE d',
      'DROP DATABASE d',
      'DROP ROLE r',
      'ALTER ROLE r RENAME TO q',
      'DO $$ BEGIN END $$',
    ]) {
      expect([sql, classify(sql).cluster, classify(sql).invalidatesAll]).toEqual([sql, true, true]);
    }
    for (const sql of ['GRANT SELECT ON a TO r', 'CREATE TABLE b AS SELECT 1', 'ALTER TABLE a RENAME TO b', 'ALTER SCHEMA s RENAME TO t']) {
      expect([sql, classify(sql).cluster, classify(sql).invalidatesAll]).toEqual([sql, false, true]);
    }
  });
});
