/**
 * Probe (reviewer): classify.ts drops every unqualified read whose name equals the name of any CTE
 * anywhere in the statement, whatever its scope. A table read outside the CTE's scope is then
 * neither checked in the catalog (sequences, views over volatile functions, row-level security)
 * nor tagged, so a write through sidecache does not reach its entry.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import type { SidecacheServer } from '../../../src/server.js';
import { connect, pgUnreachable, startPgSidecache, unique } from '../../helpers/pg.js';
import { metric } from '../../helpers/sidecache.js';

const unreachable = await pgUnreachable();

describe.skipIf(unreachable !== undefined)('probe: a CTE name that shadows a table in another scope', () => {
  let server: SidecacheServer;
  let port: number;
  let direct: pg.Client;
  const t = unique('pr_t');
  const v = unique('pr_v');

  beforeAll(async () => {
    ({ server, port } = await startPgSidecache());
    direct = await connect(undefined);
    await direct.query(`CREATE TABLE ${t} (v text); INSERT INTO ${t} VALUES ('one'); CREATE VIEW ${v} AS SELECT random() AS r`);
  });
  afterAll(async () => {
    await server?.stop(100);
    await direct?.query(`DROP VIEW ${v}; DROP TABLE ${t}`);
    await direct?.end();
  });

  it('a write through sidecache is seen by the next read of the same session', async () => {
    const sql = `SELECT ${t}.v FROM ${t}, (WITH ${t} AS (SELECT 1) SELECT * FROM ${t}) s ORDER BY 1`;
    const session = await connect(port);
    try {
      expect((await session.query(sql)).rows).toEqual([{ v: 'one' }]);
      await session.query(`INSERT INTO ${t} VALUES ('two')`);
      expect((await session.query(sql)).rows).toEqual([{ v: 'one' }, { v: 'two' }]);
    } finally {
      await session.end();
    }
  });

  it('a view over random() read beside a CTE of its name is not cached', async () => {
    const sql = `SELECT ${v}.r FROM ${v}, (WITH ${v} AS (SELECT 1) SELECT * FROM ${v}) s`;
    const session = await connect(port);
    try {
      const hits = () => metric(server, 'sidecache_requests_total', { protocol: 'postgres', listener: 'main', result: 'hit' });
      const before = await hits();
      const first = (await session.query(sql)).rows[0].r as number;
      const second = (await session.query(sql)).rows[0].r as number;
      expect(await hits()).toBe(before);
      expect(second).not.toBe(first);
    } finally {
      await session.end();
    }
  });

  it('a row-level-security table read beside a CTE of its name is not cached past a revocation', async () => {
    const role = unique('pr_member');
    const docs = unique('pr_docs');
    const members = unique('pr_members');
    await direct.query(`
      CREATE ROLE ${role} LOGIN;
      CREATE TABLE ${members} (team text, usr text); INSERT INTO ${members} VALUES ('a', '${role}');
      CREATE TABLE ${docs} (team text, body text); INSERT INTO ${docs} VALUES ('a', 'team a plans');
      ALTER TABLE ${docs} ENABLE ROW LEVEL SECURITY;
      CREATE POLICY member ON ${docs} USING (team IN (SELECT team FROM ${members} WHERE usr = current_user));
      GRANT SELECT ON ${docs}, ${members} TO ${role};`);
    const member = await connect(port, { user: role });
    const admin = await connect(port);
    try {
      const sql = `SELECT ${docs}.body FROM ${docs}, (WITH ${docs} AS (SELECT 1) SELECT * FROM ${docs}) s`;
      expect((await member.query(sql)).rows).toEqual([{ body: 'team a plans' }]);
      // The member leaves the team, through sidecache.
      await admin.query(`DELETE FROM ${members} WHERE usr = '${role}'`);
      expect((await member.query(sql)).rows).toEqual([]);
    } finally {
      await member.end();
      await admin.end();
      await direct.query(`DROP TABLE ${docs}, ${members}; DROP ROLE ${role}`);
    }
  });
});
