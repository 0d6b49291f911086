/**
 * Probe (reviewer): what the volatility checks do not see.
 * - An aggregate's own pg_proc row says IMMUTABLE whatever its transition function is
 *   (CREATE AGGREGATE writes 'i' there): an aggregate over a VOLATILE step is cached.
 * - A cast to a domain over regclass reads the catalog (regclassin) but only base types are
 *   checked: after DROP/CREATE of the table through sidecache the old OID is answered.
 * - A literal coerced to regclass as a function's argument (no cast written) reads the catalog
 *   too; pg_partition_root(regclass) is IMMUTABLE in pg_proc: after DETACH PARTITION through
 *   sidecache it still answers the old parent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import type { SidecacheServer } from '../../../src/server.js';
import { connect, pgUnreachable, startPgSidecache, unique } from '../../helpers/pg.js';
import { metric } from '../../helpers/sidecache.js';

const unreachable = await pgUnreachable();

describe.skipIf(unreachable !== undefined)('probe: volatility the catalog checks do not see', () => {
  let server: SidecacheServer;
  let port: number;
  let direct: pg.Client;
  const step = unique('pr_step');
  const agg = unique('pr_agg');
  const dom = unique('pr_dom');
  const t = unique('pr_t');
  const parent = unique('pr_parent');

  beforeAll(async () => {
    ({ server, port } = await startPgSidecache());
    direct = await connect(undefined);
    await direct.query(`
      CREATE FUNCTION ${step}(int, int) RETURNS int LANGUAGE sql VOLATILE AS $$ SELECT $1 + (random() * 1000000)::int $$;
      CREATE AGGREGATE ${agg}(int) (sfunc = ${step}, stype = int, initcond = '0');
      CREATE DOMAIN ${dom} AS regclass;
      CREATE TABLE ${t} (v int);
      CREATE TABLE ${parent} (k int) PARTITION BY RANGE (k);
      CREATE TABLE ${parent}_c PARTITION OF ${parent} FOR VALUES FROM (0) TO (10);`);
  });
  afterAll(async () => {
    await server?.stop(100);
    await direct?.query(`DROP AGGREGATE ${agg}(int); DROP FUNCTION ${step}(int, int); DROP DOMAIN ${dom}; DROP TABLE IF EXISTS ${t}, ${parent}, ${parent}_c`);
    await direct?.end();
  });

  it('an aggregate over a VOLATILE transition function is not cached', async () => {
    const client = await connect(port);
    try {
      const hits = () => metric(server, 'sidecache_requests_total', { protocol: 'postgres', listener: 'main', result: 'hit' });
      const before = await hits();
      const sql = `SELECT ${agg}(x) AS r FROM generate_series(1, 3) x`;
      const first = (await client.query(sql)).rows[0].r as number;
      const second = (await client.query(sql)).rows[0].r as number;
      expect(await hits()).toBe(before);
      expect(second).not.toBe(first);
    } finally {
      await client.end();
    }
  });

  it('a cast to a domain over regclass follows DROP/CREATE of the table through sidecache', async () => {
    const client = await connect(port);
    try {
      const sql = `SELECT '${t}'::${dom}::oid::text AS oid`;
      await client.query(sql);
      await client.query(`DROP TABLE ${t}`);
      await client.query(`CREATE TABLE ${t} (v int)`);
      const now = (await direct.query(sql)).rows[0].oid as string;
      expect((await client.query(sql)).rows[0].oid).toBe(now);
    } finally {
      await client.end();
    }
  });

  it('a literal coerced to regclass by a call follows DETACH PARTITION through sidecache', async () => {
    const client = await connect(port);
    try {
      const sql = `SELECT pg_partition_root('${parent}_c')::text AS root`;
      expect((await client.query(sql)).rows).toEqual([{ root: parent }]);
      await client.query(`ALTER TABLE ${parent} DETACH PARTITION ${parent}_c`);
      expect((await direct.query(sql)).rows).toEqual([{ root: null }]);
      expect((await client.query(sql)).rows).toEqual([{ root: null }]);
    } finally {
      await client.end();
    }
  });
});
