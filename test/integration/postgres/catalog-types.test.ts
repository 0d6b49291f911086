/**
 * Values read from the catalog (reg* types, aclitem and every type built on them) are not cached
 * however they are reached: a cast to the array type by its own name, a column of such a type.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import type { SidecacheServer } from '../../../src/server.js';
import { connect, pgUnreachable, startPgSidecache, unique } from '../../helpers/pg.js';

const unreachable = await pgUnreachable();

describe.skipIf(unreachable !== undefined)('values read from the catalog', () => {
  let server: SidecacheServer;
  let port: number;
  let direct: pg.Client;
  const target = unique('ct_target');
  const named = unique('ct_named');
  const refs = unique('ct_refs');

  beforeAll(async () => {
    ({ server, port } = await startPgSidecache());
    direct = await connect(undefined);
    await direct.query(
      `CREATE TABLE ${target} (v int); CREATE TABLE ${named} (v int); CREATE TABLE ${refs} (r regclass); INSERT INTO ${refs} VALUES ('${named}')`,
    );
  });
  afterAll(async () => {
    await server?.stop(100);
    await direct?.query(`DROP TABLE IF EXISTS ${target}, ${named}, ${refs}`);
    await direct?.end();
  });

  it('a cast to _regclass (regclass[] by its own name) follows DROP/CREATE through sidecache', async () => {
    const client = await connect(port);
    try {
      const sql = `SELECT ('{${target}}'::_regclass)[1]::oid::text AS oid`;
      await client.query(sql);
      await client.query(`DROP TABLE ${target}`);
      await client.query(`CREATE TABLE ${target} (v int)`);
      expect((await client.query(sql)).rows).toEqual((await direct.query(sql)).rows);
    } finally {
      await client.end();
    }
  });

  it('a regclass column follows DROP of the table it names through sidecache', async () => {
    const client = await connect(port);
    try {
      const sql = `SELECT r::text AS r FROM ${refs}`;
      expect((await client.query(sql)).rows).toEqual([{ r: named }]);
      await client.query(`DROP TABLE ${named}`);
      const now = (await direct.query(sql)).rows;
      expect(now).not.toEqual([{ r: named }]);
      expect((await client.query(sql)).rows).toEqual(now);
    } finally {
      await client.end();
    }
  });
});
