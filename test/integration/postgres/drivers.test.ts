import postgres from 'postgres';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SidecacheServer } from '../../../src/server.js';
import { connect, PG, pgUnreachable, startPgSidecache, unique } from '../../helpers/pg.js';

const unreachable = await pgUnreachable();

describe.skipIf(unreachable !== undefined)('postgres listener: postgres.js (pipelining, Describe-first prepared statements)', () => {
  let server: SidecacheServer;
  let port: number;
  let direct: pg.Client;
  const table = unique('pjs');

  beforeAll(async () => {
    ({ server, port } = await startPgSidecache());
    direct = await connect(undefined);
    await direct.query(`CREATE TABLE ${table} (id int PRIMARY KEY, v text, n numeric, at timestamptz DEFAULT '2026-01-01T00:00:00Z')`);
    await direct.query(`INSERT INTO ${table} (id, v, n) SELECT g, 'v' || g, g * 1.5 FROM generate_series(1, 30) g`);
  });
  afterAll(async () => {
    await direct.query(`DROP TABLE IF EXISTS ${table}`);
    await direct.end();
    await server.stop(100);
  });

  it('returns the same rows as PostgreSQL for prepared, unprepared and pipelined queries, and writes invalidate', async () => {
    const sql = postgres({ host: '127.0.0.1', port, user: PG.user, database: PG.database, max: 4, prepare: true, onnotice: () => undefined });
    const plain = postgres({ host: '127.0.0.1', port, user: PG.user, database: PG.database, max: 1, prepare: false, onnotice: () => undefined });
    try {
      for (let i = 0; i < 3; i++) {
        const rows = await sql`SELECT id, v, n, at FROM ${sql(table)} WHERE id = ${5}`;
        expect(rows.map((r) => ({ ...r }))).toEqual([{ id: 5, v: 'v5', n: '7.5', at: new Date('2026-01-01T00:00:00Z') }]);
        expect((await plain`SELECT v FROM ${plain(table)} WHERE id = ${6}`)[0]!.v).toBe('v6');
      }
      // Many queries at once on few connections: postgres.js pipelines them.
      const ids = Array.from({ length: 30 }, (_, i) => i + 1);
      const many = await Promise.all(ids.map((id) => sql`SELECT v FROM ${sql(table)} WHERE id = ${id}`));
      expect(many.map((r) => r[0]!.v)).toEqual(ids.map((id) => `v${id}`));
      const again = await Promise.all(ids.map((id) => sql`SELECT v FROM ${sql(table)} WHERE id = ${id}`));
      expect(again.map((r) => r[0]!.v)).toEqual(ids.map((id) => `v${id}`));
      // Most of the second round are hits (a batch that also prepares has another shape, so another key).
      const metrics = await (await fetch(`${server.adminUrl}/metrics`)).text();
      expect(Number(/sidecache_requests_total\{protocol="postgres",listener="main",result="hit"\} (\d+)/.exec(metrics)?.[1])).toBeGreaterThanOrEqual(20);
      await sql`UPDATE ${sql(table)} SET v = 'changed' WHERE id = ${5}`;
      expect((await sql`SELECT v FROM ${sql(table)} WHERE id = ${5}`)[0]!.v).toBe('changed');
      const inTx = await sql.begin(async (tx) => {
        await tx`UPDATE ${tx(table)} SET v = 'tx' WHERE id = ${6}`;
        return (await tx`SELECT v FROM ${tx(table)} WHERE id = ${6}`)[0]!.v;
      });
      expect(inTx).toBe('tx');
      expect((await plain`SELECT v FROM ${plain(table)} WHERE id = ${6}`)[0]!.v).toBe('tx');
      await expect(sql`SELECT 1/0`).rejects.toThrow(/division by zero/);
      expect((await sql`SELECT ${'after error'}::text AS t`)[0]!.t).toBe('after error');
    } finally {
      await sql.end();
      await plain.end();
    }
  });
});
