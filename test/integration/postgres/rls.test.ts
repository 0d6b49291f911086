/**
 * Row-level security: a table with policies is never cached, as a policy may read another table,
 * the time or a setting. Here the policy reads an ACL table: once a row of the ACL is deleted
 * through sidecache, the user no longer sees the document.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { connect, pgUnreachable, startPgSidecache, unique } from '../../helpers/pg.js';
import type { SidecacheServer } from '../../../src/server.js';

const unreachable = await pgUnreachable();

describe.skipIf(unreachable !== undefined)('row-level security', () => {
  const s = unique('rls');
  const reader = unique('reader');
  let direct: pg.Client;
  let server: SidecacheServer;

  beforeAll(async () => {
    direct = await connect(undefined);
    await direct.query(`CREATE ROLE ${reader} LOGIN;
      CREATE SCHEMA ${s}; GRANT USAGE ON SCHEMA ${s} TO ${reader};
      CREATE TABLE ${s}.docs (id int, body text);
      CREATE TABLE ${s}.acl (doc int, who name);
      INSERT INTO ${s}.docs VALUES (1, 'secret');
      INSERT INTO ${s}.acl VALUES (1, '${reader}');
      GRANT SELECT ON ${s}.docs, ${s}.acl TO ${reader};
      ALTER TABLE ${s}.docs ENABLE ROW LEVEL SECURITY;
      CREATE POLICY can_read ON ${s}.docs FOR SELECT USING (EXISTS (SELECT 1 FROM ${s}.acl WHERE acl.doc = docs.id AND acl.who = current_user));`);
    ({ server } = await startPgSidecache());
  });
  afterAll(async () => {
    await server?.stop(100);
    await direct?.query(`DROP SCHEMA IF EXISTS ${s} CASCADE; DROP ROLE IF EXISTS ${reader}`);
    await direct?.end();
  });

  it('after DELETE FROM acl through sidecache, the row is gone for that user', async () => {
    const port = server.postgresListeners[0]!.address.port;
    const user = await connect(port, { user: reader });
    const admin = await connect(port);
    try {
      const sql = `SELECT id, body FROM ${s}.docs`;
      expect((await user.query(sql)).rows).toEqual([{ id: 1, body: 'secret' }]);
      expect((await user.query(sql)).rows).toEqual([{ id: 1, body: 'secret' }]);
      await admin.query(`DELETE FROM ${s}.acl WHERE doc = 1`);
      expect((await user.query(sql)).rows).toEqual([]);
    } finally {
      await user.end();
      await admin.end();
    }
  });
});
