/**
 * Probe (reviewer): a SET in a multi-statement Query runs in its implicit transaction; a ROLLBACK
 * later in the same Query (PostgreSQL: WARNING "there is no transaction in progress", then the
 * implicit transaction is rolled back, the SET with it) leaves the session's settings as they were.
 * Sidecache counts the SET anyway, so the session's reads are stored under the key of a
 * search_path (or role) it does not have, and answered to other sessions that do have it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import type { SidecacheServer } from '../../../src/server.js';
import { connect, pgUnreachable, startPgSidecache, unique, shadowedTable } from '../../helpers/pg.js';

const unreachable = await pgUnreachable();

describe.skipIf(unreachable !== undefined)('probe: SET rolled back with the implicit transaction of its Query', () => {
  let server: SidecacheServer;
  let port: number;
  let direct: pg.Client;
  const { t, s2, create: createShadowed, drop: dropShadowed } = shadowedTable('sp');

  beforeAll(async () => {
    ({ server, port } = await startPgSidecache());
    direct = await connect(undefined);
    await direct.query(`
      ${createShadowed}`);
  });
  afterAll(async () => {
    await server?.stop(100);
    await direct?.query(dropShadowed);
    await direct?.end();
  });

  for (const undo of ['ROLLBACK', 'BEGIN; ROLLBACK']) {
    it(`"SET search_path = s2; ${undo}" does not give the session the key of s2`, async () => {
      const a = await connect(port);
      const b = await connect(port);
      try {
        await a.query(`SET search_path = ${s2}; ${undo}`);
        // PostgreSQL rolled the SET back.
        expect((await a.query('SHOW search_path')).rows).toEqual([{ search_path: '"$user", public' }]);
        expect((await a.query(`SELECT v FROM ${t} WHERE '${undo}' <> ''`)).rows).toEqual([{ v: 'public row' }]);
        await b.query(`SET search_path = ${s2}`);
        expect((await b.query(`SELECT v FROM ${t} WHERE '${undo}' <> ''`)).rows).toEqual([{ v: 's2 row' }]);
      } finally {
        await a.end();
        await b.end();
      }
    });
  }
});

describe.skipIf(unreachable !== undefined)('probe: SET ROLE rolled back with the implicit transaction of its Query', () => {
  let server: SidecacheServer;
  let port: number;
  let direct: pg.Client;
  const app = unique('pr_app');
  const low = unique('pr_low');
  const secret = unique('pr_secret');

  beforeAll(async () => {
    ({ server, port } = await startPgSidecache());
    direct = await connect(undefined);
    // A login role (not a superuser, so is_superuser does not tell the roles apart) that may read
    // the table, and a role it may SET ROLE to that may not.
    await direct.query(`
      CREATE ROLE ${low}; CREATE ROLE ${app} LOGIN; GRANT ${low} TO ${app};
      CREATE TABLE ${secret} (v text); INSERT INTO ${secret} VALUES ('top secret'); GRANT SELECT ON ${secret} TO ${app};`);
  });
  afterAll(async () => {
    await server?.stop(100);
    await direct?.query(`DROP TABLE ${secret}; DROP ROLE ${app}; DROP ROLE ${low}`);
    await direct?.end();
  });

  it('a session that really is the lower role is refused, not answered with the login role rows', async () => {
    const a = await connect(port, { user: app });
    const b = await connect(port, { user: app });
    try {
      await a.query(`SET ROLE ${low}; ROLLBACK`);
      expect((await a.query('SELECT current_user AS u')).rows).toEqual([{ u: app }]);
      expect((await a.query(`SELECT v FROM ${secret}`)).rows).toEqual([{ v: 'top secret' }]);
      await b.query(`SET ROLE ${low}`);
      expect((await b.query('SELECT current_user AS u')).rows).toEqual([{ u: low }]);
      await expect(b.query(`SELECT v FROM ${secret}`)).rejects.toThrow(/permission denied/);
    } finally {
      await a.end();
      await b.end();
    }
  });
});
