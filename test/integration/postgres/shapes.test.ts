/**
 * Issue 15: simple-mode texts that differ only in constants share one plan (sql-shape.ts), through
 * the listener: a new constant of a known shape is a plain miss, then a hit; a constant that reads
 * the clock, of the same shape, is never answered from the cache.
 */
import type pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { sample } from '../../helpers/sidecache.js';
import { connect, pgUnreachable, usePgFixture } from '../../helpers/pg.js';

const unreachable = await pgUnreachable();

describe.skipIf(unreachable !== undefined)('postgres listener: plans by statement shape', () => {
  const f = usePgFixture(
    'shapes',
    (t) => `CREATE TABLE ${t} (id int PRIMARY KEY, d date, v text);
      INSERT INTO ${t} SELECT g, DATE '2000-01-01' + g, 'v' || g FROM generate_series(1, 50) g`,
  );
  const clients: pg.Client[] = [];
  afterAll(async () => {
    for (const c of clients) await c.end().catch(() => undefined);
  });
  const count = async (result: string) =>
    sample(await (await fetch(`${f.server.adminUrl}/metrics`)).text(), 'sidecache_requests_total', { protocol: 'postgres', listener: 'main', result });

  it('each constant of a known shape is a miss then a hit, answered with its own rows', async () => {
    const via = await connect(f.port);
    clients.push(via);
    await via.query(`SELECT v FROM ${f.table} WHERE id = 1`);
    const [hits, misses] = [await count('hit'), await count('miss')];
    for (let id = 2; id <= 6; id++) {
      for (let i = 0; i < 2; i++) expect((await via.query(`SELECT v FROM ${f.table} WHERE id = ${id}`)).rows).toEqual([{ v: `v${id}` }]);
    }
    expect([(await count('hit')) - hits, (await count('miss')) - misses]).toEqual([5, 5]);
  });

  it("a time word in a constant of a cached shape goes upstream every time ('today', 'to' 'day' joined by the lexer, 'today_' read as today)", async () => {
    const via = await connect(f.port);
    clients.push(via);
    const shape = (literal: string) => `SELECT count(*)::int AS n FROM ${f.table} WHERE d < ${literal}::date`;
    for (let i = 0; i < 2; i++) expect((await via.query(shape("'2000-01-11'"))).rows).toEqual([{ n: 9 }]);
    const bypasses = await count('bypass');
    for (const literal of ["'today'", "'to'\n'day'", "'TODAY'", "'today_'", "'_today'"]) {
      for (let i = 0; i < 2; i++) expect((await via.query(shape(literal))).rows).toEqual([{ n: 50 }]);
    }
    expect((await count('bypass')) - bypasses).toBe(10);
  });
});
