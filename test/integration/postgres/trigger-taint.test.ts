/**
 * A write can run code the statement does not show: a user trigger may change the session
 * (set_config), so the session stops using the cache once the catalog says a table it wrote has
 * user triggers or rules.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import type { SidecacheServer } from '../../../src/server.js';
import { connect, pgUnreachable, startPgSidecache, unique } from '../../helpers/pg.js';

const unreachable = await pgUnreachable();

describe.skipIf(unreachable !== undefined)('postgres listener: writes that run triggers', () => {
  let server: SidecacheServer;
  let port: number;
  let direct: pg.Client;
  const t = unique('t');
  const s2 = unique('s2');
  const log = unique('log');
  const fn = unique('fn');

  beforeAll(async () => {
    ({ server, port } = await startPgSidecache());
    direct = await connect(undefined);
    await direct.query(`
      CREATE TABLE public.${t} (v text); INSERT INTO public.${t} VALUES ('public row');
      CREATE SCHEMA ${s2}; CREATE TABLE ${s2}.${t} (v text); INSERT INTO ${s2}.${t} VALUES ('s2 row');
      CREATE TABLE ${log} (id int);
      CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM set_config('search_path', '${s2}', false); RETURN NEW; END $$;
      CREATE TRIGGER ${fn} BEFORE INSERT ON ${log} FOR EACH ROW EXECUTE FUNCTION ${fn}();`);
  });
  afterAll(async () => {
    await server?.stop(100);
    await direct?.query(`DROP TABLE public.${t}, ${log}; DROP SCHEMA ${s2} CASCADE; DROP FUNCTION ${fn}()`);
    await direct?.end();
  });

  it('a write whose trigger calls set_config taints the session: its next read is the server answer', async () => {
    if (unreachable !== undefined) console.warn(`SKIPPED: ${unreachable}`);
    const other = await connect(port);
    const session = await connect(port);
    try {
      // Another session fills the entry for the default search_path.
      expect((await other.query(`SELECT v FROM ${t}`)).rows).toEqual([{ v: 'public row' }]);
      expect((await session.query(`SELECT v FROM ${t}`)).rows).toEqual([{ v: 'public row' }]);
      await session.query(`INSERT INTO ${log} VALUES (1)`);
      // PostgreSQL now reads s2 for this session (the trigger changed its search_path).
      expect((await session.query('SHOW search_path')).rows).toEqual([{ search_path: s2 }]);
      expect((await session.query(`SELECT v FROM ${t}`)).rows).toEqual([{ v: 's2 row' }]);
      // Other sessions are unaffected.
      expect((await other.query(`SELECT v FROM ${t}`)).rows).toEqual([{ v: 'public row' }]);
    } finally {
      await other.end();
      await session.end();
    }
  });
});
