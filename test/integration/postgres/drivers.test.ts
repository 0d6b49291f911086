import postgres from 'postgres';
import { describe, expect, it } from 'vitest';
import { PG, pgUnreachable, usePgFixture } from '../../helpers/pg.js';

const unreachable = await pgUnreachable();

describe.skipIf(unreachable !== undefined)('postgres listener: postgres.js (pipelining, Describe-first prepared statements)', () => {
  const f = usePgFixture(
    'pjs',
    (t) => `CREATE TABLE ${t} (id int PRIMARY KEY, v text, n numeric, at timestamptz DEFAULT '2026-01-01T00:00:00Z');
      INSERT INTO ${t} (id, v, n) SELECT g, 'v' || g, g * 1.5 FROM generate_series(1, 30) g`,
  );

  it('returns the same rows as PostgreSQL for prepared, unprepared and pipelined queries, and writes invalidate', async () => {
    const sql = postgres({ host: '127.0.0.1', port: f.port, user: PG.user, database: PG.database, max: 4, prepare: true, onnotice: () => undefined });
    const plain = postgres({ host: '127.0.0.1', port: f.port, user: PG.user, database: PG.database, max: 1, prepare: false, onnotice: () => undefined });
    try {
      for (let i = 0; i < 3; i++) {
        const rows = await sql`SELECT id, v, n, at FROM ${sql(f.table)} WHERE id = ${5}`;
        expect(rows.map((r) => ({ ...r }))).toEqual([{ id: 5, v: 'v5', n: '7.5', at: new Date('2026-01-01T00:00:00Z') }]);
        expect((await plain`SELECT v FROM ${plain(f.table)} WHERE id = ${6}`)[0]!.v).toBe('v6');
      }
      // Many queries at once on few connections: postgres.js pipelines them.
      const ids = Array.from({ length: 30 }, (_, i) => i + 1);
      const many = await Promise.all(ids.map((id) => sql`SELECT v FROM ${sql(f.table)} WHERE id = ${id}`));
      expect(many.map((r) => r[0]!.v)).toEqual(ids.map((id) => `v${id}`));
      const again = await Promise.all(ids.map((id) => sql`SELECT v FROM ${sql(f.table)} WHERE id = ${id}`));
      expect(again.map((r) => r[0]!.v)).toEqual(ids.map((id) => `v${id}`));
      // Most of the second round are hits (a batch that also prepares has another shape, so another key).
      const metrics = await (await fetch(`${f.server.adminUrl}/metrics`)).text();
      expect(Number(/sidecache_requests_total\{protocol="postgres",listener="main",result="hit"\} (\d+)/.exec(metrics)?.[1])).toBeGreaterThanOrEqual(20);
      await sql`UPDATE ${sql(f.table)} SET v = 'changed' WHERE id = ${5}`;
      expect((await sql`SELECT v FROM ${sql(f.table)} WHERE id = ${5}`)[0]!.v).toBe('changed');
      const inTx = await sql.begin(async (tx) => {
        await tx`UPDATE ${tx(f.table)} SET v = 'tx' WHERE id = ${6}`;
        return (await tx`SELECT v FROM ${tx(f.table)} WHERE id = ${6}`)[0]!.v;
      });
      expect(inTx).toBe('tx');
      expect((await plain`SELECT v FROM ${plain(f.table)} WHERE id = ${6}`)[0]!.v).toBe('tx');
      await expect(sql`SELECT 1/0`).rejects.toThrow(/division by zero/);
      expect((await sql`SELECT ${'after error'}::text AS t`)[0]!.t).toBe('after error');
    } finally {
      await sql.end();
      await plain.end();
    }
  });
});
