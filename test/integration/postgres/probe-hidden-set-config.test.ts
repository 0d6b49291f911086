/**
 * Probe (reviewer): set_config reached through code the statement does not name leaves the session
 * untainted, so its reads are stored under the key of the search_path it had before and answered to
 * other sessions:
 * - an overload of a "session-neutral" built-in name (`public.lower(int)`): the allow list of
 *   session-effects.ts goes by name only, and with the default search_path `lower(1)` runs it;
 * - a column DEFAULT that calls a function (the write reach looks for triggers and rules only);
 * - a view whose body calls set_config (the session model scans the statement's own calls only).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import type { SidecacheServer } from '../../../src/server.js';
import { connect, pgUnreachable, startPgSidecache, unique, shadowedTable } from '../../helpers/pg.js';

const unreachable = await pgUnreachable();

describe.skipIf(unreachable !== undefined)('probe: set_config run by code the statement does not show', () => {
  let server: SidecacheServer;
  let port: number;
  let direct: pg.Client;
  const { t, s2, create: createShadowed, drop: dropShadowed } = shadowedTable('sp');
  const fn = unique('pr_fn');
  const withDefault = unique('pr_def');
  const view = unique('pr_view');

  beforeAll(async () => {
    ({ server, port } = await startPgSidecache());
    direct = await connect(undefined);
    await direct.query(`
      ${createShadowed}
      CREATE FUNCTION public.lower(int) RETURNS text LANGUAGE sql AS $$ SELECT set_config('search_path', '${s2}', false) $$;
      CREATE FUNCTION ${fn}() RETURNS int LANGUAGE sql AS $$ SELECT length(set_config('search_path', '${s2}', false)) $$;
      CREATE TABLE ${withDefault} (id int, x int DEFAULT ${fn}());
      CREATE VIEW ${view} AS SELECT ${fn}() AS x;`);
  });
  afterAll(async () => {
    await server?.stop(100);
    await direct?.query(`DROP VIEW ${view}; ${dropShadowed} DROP TABLE ${withDefault}; DROP FUNCTION public.lower(int), ${fn}()`);
    await direct?.end();
  });

  for (const [label, statement] of [
    ['an overload of a session-neutral name', 'SELECT lower(1)'],
    ['a column default', `INSERT INTO ${withDefault} (id) VALUES (1)`],
    ['a view body', `SELECT x FROM ${view}`],
  ] as const) {
    it(`${label} that calls set_config: other sessions keep their own answer`, async () => {
      const session = await connect(port);
      const other = await connect(port);
      try {
        const read = `SELECT v FROM ${t} WHERE '${label}' <> ''`;
        await session.query(statement);
        // PostgreSQL now reads s2 for this session.
        expect((await session.query('SHOW search_path')).rows).toEqual([{ search_path: s2 }]);
        expect((await session.query(read)).rows).toEqual([{ v: 's2 row' }]);
        expect((await other.query(read)).rows).toEqual([{ v: 'public row' }]);
      } finally {
        await session.end();
        await other.end();
      }
    });
  }
});
