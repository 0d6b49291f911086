/**
 * Issue 15: statements that differ only in constants share one parse (sql-shape.ts). Two texts
 * with one shape must classify alike, or a text would be cached (or refused) for another's reasons:
 * every case the scan cannot vouch for gives no shape, and is parsed on its own.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { classify, loadParser } from '../../../../src/upstreams/postgres/classify.js';
import { sqlShape } from '../../../../src/upstreams/postgres/sql-shape.js';
import { sessionEffects } from '../../../../src/upstreams/postgres/session-effects.js';
import { Planner } from '../../../../src/upstreams/postgres/planner.js';
import { parseConfig } from '../../../../src/config/load.js';

beforeAll(() => loadParser());

/** Pairs of texts the scan gives one shape: each pair must classify the same. */
const SAME_SHAPE: [string, string][] = [
  ['SELECT v FROM t WHERE id = 1', 'SELECT v FROM t WHERE id = 998877'],
  ["SELECT v FROM t WHERE name = 'alice'", "SELECT v FROM t WHERE name = 'bob''s'"],
  ['SELECT 1.5e-3, .5 FROM t', 'SELECT 2.0e+10, .5 FROM t'],
  ['SELECT "app_item"."id" FROM "app_item" WHERE "app_item"."id" = 5 LIMIT 21', 'SELECT "app_item"."id" FROM "app_item" WHERE "app_item"."id" = 7 LIMIT 21'],
  ["SELECT * FROM t WHERE d = date '2024-01-01'", "SELECT * FROM t WHERE d = date '1999-12-31'"],
  ["SELECT * FROM t WHERE x IN ('a', 'b', 'c')", "SELECT * FROM t WHERE x IN ('d', 'e', 'f')"],
  ['SELECT * FROM t1 ORDER BY 1', 'SELECT * FROM t1 ORDER BY 2'],
  ['SELECT "a""1" FROM t WHERE c = 3', 'SELECT "a""1" FROM t WHERE c = 4'],
  ['UPDATE counters SET n = n + 1 WHERE id = 5', 'UPDATE counters SET n = n + 1 WHERE id = 6'],
  ["INSERT INTO t (a, b) VALUES (1, 'x')", "INSERT INTO t (a, b) VALUES (2, 'y')"],
  ["SET search_path = 'a'", "SET search_path = 'b'"],
  ["SELECT set_config('app.user', '1', false)", "SELECT set_config('app.user', '2', false)"],
  ["DO 'BEGIN PERFORM 1; END'", "DO 'BEGIN DROP TABLE t; END'"],
];

/** Texts the scan must not shape: parsed on their own. */
const NO_SHAPE: Record<string, string> = {
  "SELECT * FROM t WHERE d = 'now'": 'a time word: the constant reads the clock',
  "SELECT * FROM t WHERE d = 'Today'::date": 'a time word in any case',
  "SELECT * FROM t WHERE d < 'tomorrow' AND d > 'yesterday'": 'time words',
  "SELECT 'no'\n'w'::timestamptz": "adjacent strings are one constant ('now') to the lexer",
  "SELECT 'a' 'b'": 'adjacent strings',
  "SELECT 'x''now'::date": "a time word after a doubled quote (the constant is x'now)",
  "SELECT 1 /* 'now' */": 'a comment, whatever it holds',
  "SELECT E'\\x41'": 'an escape string',
  "SELECT * FROM t WHERE a = 'x\\'": 'a backslash',
  "SELECT B'101', X'1F'": 'bit strings',
  "SELECT U&'d\\0061t'": 'a Unicode string',
  'SELECT $$now$$::date': 'a dollar quote',
  'SELECT * FROM t WHERE id = $1': 'a parameter',
  'SELECT 1 -- now\n': 'a line comment',
  'SELECT /* x */ 1': 'a block comment',
  'SELECT 0x1F': 'a hexadecimal integer',
  'SELECT 1_000': 'an underscore in a number',
  'SELECT 1.2.3': 'two dots',
  "SELECT 'unterminated": 'an unterminated string',
  'SELECT "unterminated': 'an unterminated identifier',
  "SELECT 'é' FROM t WHERE \u00e9 = 1": 'non-ASCII outside a string',
  "COPY t FROM '/x' (FORCE_NOT_NULL ('pg_temp'))": 'pg_temp, which the session analysis reads in name lists',
  'SELECT \u0001': 'a placeholder character in the text',
  'SELECT a && b FROM t': 'an ampersand (U& prefixes)',
};

describe('sqlShape', () => {
  it('gives texts that differ only in constants one shape, which keeps everything else verbatim', () => {
    for (const [a, b] of SAME_SHAPE) {
      expect(sqlShape(a), a).toBeDefined();
      expect(sqlShape(b), b).toBe(sqlShape(a));
    }
    expect(sqlShape('SELECT v FROM t WHERE id = 1')).toBe('SELECT v FROM t WHERE id = \u0001');
    expect(sqlShape("SELECT 'x'")).toBe("SELECT '\u0002'");
    // Digits inside identifiers and quoted names are not constants.
    expect(sqlShape('SELECT c1 FROM t2 WHERE "3" = 4')).toBe('SELECT c1 FROM t2 WHERE "3" = \u0001');
  });

  it('two texts of one shape classify alike', () => {
    for (const [a, b] of SAME_SHAPE) expect(classify(b), b).toEqual(classify(a));
  });

  it('the planner shares only a cacheable SELECT or a plain write by shape: a SET, set_config or DO is classified on its own', () => {
    const config = parseConfig('postgres:\n  - { name: main, listen: "127.0.0.1:0", upstream: "postgres://127.0.0.1:1" }\n', 'test.yaml', {}).postgres[0]!;
    const planner = new Planner(config, undefined);
    for (const [a, b] of SAME_SHAPE) {
      const first = planner.classify(a);
      const second = planner.classify(b);
      expect(second, b).toEqual(classify(b));
      const shared = first === second;
      expect(shared, b).toBe(first.cacheable || (first.writes.length > 0 && first.session === 'none' && !first.invalidatesAll));
    }
    // Values of SET reach the session: each text keeps its own analysis, whatever was analysed before.
    expect(sessionEffects("SET search_path = 'b'")).not.toEqual(sessionEffects("SET search_path = 'a'"));
    expect(sessionEffects("SET search_path = 'b'")[0]).toMatchObject({ kind: 'set', name: 'search_path' });
  });

  it('gives no shape to what it does not model', () => {
    for (const [sql, why] of Object.entries(NO_SHAPE)) expect(sqlShape(sql), `${why}: ${sql}`).toBeUndefined();
  });

  it('never shares a shape between a text whose constant reads the clock and one that does not', () => {
    // 'now' joined from pieces, cased, padded, in an array or range literal: each refused by the classification, each unshaped.
    for (const sql of ["SELECT ' now '::timestamptz", "SELECT '{now}'::date[]", "SELECT '[today,)'::daterange", "SELECT 'NOW'::time"]) {
      expect(classify(sql).cacheable, sql).toBe(false);
      expect(sqlShape(sql), sql).toBeUndefined();
    }
  });

  it("a time word run into other characters ('now_', '_now', 'today12:00') reads the clock too: refused and unshaped", () => {
    // PostgreSQL's ParseDateTime (src/backend/utils/adt/datetime.c) reads a run of letters as one
    // field and skips punctuation: PostgreSQL 15 answers the current time for each of these.
    for (const sql of [
      "SELECT * FROM t WHERE d > 'now_'::timestamptz",
      "SELECT * FROM t WHERE d > '_now'::timestamp",
      "SELECT * FROM t WHERE d > 'today12:00'::timestamp",
      "SELECT * FROM t WHERE d > 'today_'::date",
      "SELECT * FROM t WHERE d = ANY('{now_}'::date[])",
    ]) {
      expect(classify(sql).cacheable, sql).toBe(false);
      expect(sqlShape(sql), sql).toBeUndefined();
    }
    // A time word inside a longer word is not one (the date/time input refuses 'nowhere'): such text keeps its shape.
    for (const sql of ["SELECT * FROM t WHERE w = 'snowfall'", "SELECT * FROM t WHERE w = 'unknown'", "SELECT * FROM t WHERE w = 'todays'"]) {
      expect(classify(sql).cacheable, sql).toBe(true);
      expect(sqlShape(sql), sql).toBeDefined();
    }
  });
});
