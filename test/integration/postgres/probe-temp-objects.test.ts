/**
 * Probe (reviewer): temporary objects other than relations — a function `pg_temp.f`, a type or
 * enum in pg_temp (types are looked up in pg_temp first) — do not taint the session that creates
 * them, and the reads that use them are cached under the user's key: another session of the same
 * user, which has no such object, gets the first session's answer instead of PostgreSQL's error.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SidecacheServer } from '../../../src/server.js';
import { connect, pgUnreachable, startPgSidecache, unique } from '../../helpers/pg.js';

const unreachable = await pgUnreachable();

describe.skipIf(unreachable !== undefined)('probe: temporary functions and types', () => {
  let server: SidecacheServer;
  let port: number;
  const fn = unique('pr_tmpfn');
  const type = unique('pr_tmptype');

  beforeAll(async () => {
    ({ server, port } = await startPgSidecache());
  });
  afterAll(async () => {
    await server?.stop(100);
  });

  for (const [label, create, read] of [
    [
      'a function pg_temp.f',
      `CREATE FUNCTION pg_temp.${fn}() RETURNS text IMMUTABLE LANGUAGE sql AS $$ SELECT 'first session' $$`,
      `SELECT pg_temp.${fn}() AS v`,
    ],
    ['an enum in pg_temp', `CREATE TYPE pg_temp.${type} AS ENUM ('first session')`, `SELECT 'first session'::${type} AS v`],
  ] as const) {
    it(`${label} of one session is not answered to another`, async () => {
      const a = await connect(port);
      const b = await connect(port);
      try {
        await a.query(create);
        expect((await a.query(read)).rows).toEqual([{ v: 'first session' }]);
        // PostgreSQL: b has no such function or type.
        await expect(b.query(read)).rejects.toThrow(/does not exist/);
      } finally {
        await a.end();
        await b.end();
      }
    });
  }
});
