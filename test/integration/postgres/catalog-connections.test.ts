/**
 * sidecache must not hold databases open. In band (the default) it has no catalog connection of its
 * own; with `catalogUrl` its connections close when idle, and before a DROP DATABASE it forwards.
 */
import { describe, expect, it } from 'vitest';
import pg from 'pg';
import { connect, PG, pgUnreachable, unique } from '../../helpers/pg.js';
import { metric, startSidecache } from '../../helpers/sidecache.js';
import { waitFor } from '../../helpers/wait.js';

const unreachable = await pgUnreachable();

/** sidecache's catalog connections to `database`, as the server sees them. */
async function catalogSessions(direct: pg.Client, database: string): Promise<number> {
  const { rows } = await direct.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'sidecache catalog'`, [
    database,
  ]);
  return rows[0].n as number;
}

describe.skipIf(unreachable !== undefined)('postgres listener: catalog connections', () => {
  const upstream = `postgres://${PG.host}:${PG.port}?sslmode=disable`;
  const listener = `postgres:\n  - { name: main, listen: "127.0.0.1:0", upstream: "${upstream}", catalogUrl: "postgres://${PG.user}@${PG.host}:${PG.port}/${PG.database}" }\n`;

  it('in band, sidecache opens no connection of its own: reads are cached and DROP DATABASE through the listener succeeds', async () => {
    const server = await startSidecache(`postgres:\n  - { name: main, listen: "127.0.0.1:0", upstream: "${upstream}" }\n`, { planWaitMs: 10_000 });
    const port = server.postgresListeners[0]!.address.port;
    const direct = await connect(undefined);
    const db = unique('db');
    try {
      await direct.query(`CREATE DATABASE ${db}`);
      const inDb = await connect(port, { database: db });
      await inDb.query('CREATE TABLE t (v int)');
      await inDb.query('SELECT v FROM t');
      await inDb.query('SELECT v FROM t');
      expect(await metric(server, 'sidecache_requests_total', { protocol: 'postgres', listener: 'main', result: 'hit' })).toBe(1);
      const { rows } = await direct.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1`, [db]);
      expect(rows[0].n).toBe(1);
      expect(await catalogSessions(direct, db)).toBe(0);
      await inDb.end();
      const other = await connect(port);
      await other.query(`DROP DATABASE ${db}`);
      await other.end();
    } finally {
      await direct.query(`DROP DATABASE IF EXISTS ${db}`);
      await direct.end();
      await server.stop(100);
    }
  });

  it("with catalogUrl, DROP DATABASE through the listener succeeds although sidecache asked that database's catalog", async () => {
    const server = await startSidecache(listener, { planWaitMs: 10_000 });
    const port = server.postgresListeners[0]!.address.port;
    const direct = await connect(undefined);
    const db = unique('db');
    try {
      await direct.query(`CREATE DATABASE ${db}`);
      const inDb = await connect(port, { database: db });
      await inDb.query('CREATE TABLE t (v int)');
      await inDb.query('SELECT v FROM t');
      await inDb.end();
      expect(await catalogSessions(direct, db)).toBeGreaterThan(0);
      const other = await connect(port);
      // Before: "database … is being accessed by other users" (sidecache's own catalog connection).
      await other.query(`DROP DATABASE ${db}`);
      await other.end();
    } finally {
      await direct.query(`DROP DATABASE IF EXISTS ${db}`);
      await direct.end();
      await server.stop(100);
    }
  });

  it('with catalogUrl, closes a catalog connection that has been idle', async () => {
    const server = await startSidecache(listener, { planWaitMs: 10_000, catalogIdleMs: 50 });
    const port = server.postgresListeners[0]!.address.port;
    const direct = await connect(undefined);
    const db = unique('db');
    try {
      await direct.query(`CREATE DATABASE ${db}`);
      const client = await connect(port, { database: db });
      await client.query('CREATE TABLE t (v int)');
      await client.query('SELECT v FROM t');
      await client.end();
      await waitFor(async () => (await catalogSessions(direct, db)) === 0, 'the idle catalog connection to close');
    } finally {
      await direct.query(`DROP DATABASE IF EXISTS ${db}`);
      await direct.end();
      await server.stop(100);
    }
  });
});
