/**
 * Probe (reviewer): the catalog questions name pg_class, pg_proc, … without a schema, and are asked
 * on a connection as the client's user, so that user's search_path applies. An unprivileged role
 * whose default search_path puts its own schema before pg_catalog answers them with its own views,
 * and the answers are shared by every user of the database: here it makes now() and random()
 * IMMUTABLE for everyone (the superuser's `SELECT random()` is then answered from the cache).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { connect, pgUnreachable, startPgSidecache, unique } from '../../helpers/pg.js';
import { metric } from '../../helpers/sidecache.js';

const unreachable = await pgUnreachable();

describe.skipIf(unreachable !== undefined)('probe: catalog answers from a role that shadows pg_catalog', () => {
  const role = unique('pr_shadow');
  let direct: pg.Client;

  beforeAll(async () => {
    direct = await connect(undefined);
    await direct.query(`CREATE ROLE ${role} LOGIN; CREATE SCHEMA ${role} AUTHORIZATION ${role}`);
    const attacker = await connect(undefined, { user: role });
    try {
      // Nothing but what any role may do in its own schema, and ALTER ROLE SET on itself.
      await attacker.query(`
        CREATE VIEW ${role}.pg_proc AS SELECT p.oid, p.proname, p.pronamespace, p.pronargs, p.pronargdefaults, p.provariadic,
          CASE WHEN p.proname IN ('now', 'random') THEN 'i'::"char" ELSE p.provolatile END AS provolatile
          FROM pg_catalog.pg_proc p;
        ALTER ROLE ${role} SET search_path = ${role}, pg_catalog;`);
    } finally {
      await attacker.end();
    }
  });
  afterAll(async () => {
    await direct?.query(`DROP SCHEMA IF EXISTS ${role} CASCADE; DROP ROLE IF EXISTS ${role}`);
    await direct?.end();
  });

  it("another role's random() is never answered from the cache", async () => {
    const { server, port } = await startPgSidecache();
    try {
      // The attacker's session is the first of the database: the built-ins are read as that role.
      const attacker = await connect(port, { user: role });
      await attacker.query('SELECT random() AS r');
      await attacker.end();
      const victim = await connect(port);
      try {
        const first = (await victim.query('SELECT random() AS r')).rows[0].r as number;
        const second = (await victim.query('SELECT random() AS r')).rows[0].r as number;
        expect(await metric(server, 'sidecache_requests_total', { protocol: 'postgres', listener: 'main', result: 'hit' })).toBe(0);
        expect(second).not.toBe(first);
      } finally {
        await victim.end();
      }
    } finally {
      await server.stop(100);
    }
  });
});
