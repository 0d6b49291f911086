/**
 * Probe (reviewer): every catalog question of a listener runs one after another on one chain, and
 * `pg_get_viewdef` takes a lock on the view. A transaction elsewhere holding a lock on a view
 * (a migration, LOCK TABLE) blocks the question about any statement that reads it; every later
 * question waits behind it, with no timeout. A write through sidecache to an unrelated table then
 * leaves its database "unresolved": every read of that database waits `planWaitMs` and goes
 * upstream uncached until the lock is released.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import type { SidecacheServer } from '../../../src/server.js';
import { connect, PG, pgUnreachable, unique } from '../../helpers/pg.js';
import { metric, startSidecache } from '../../helpers/sidecache.js';
import { waitFor } from '../../helpers/wait.js';

const unreachable = await pgUnreachable();

describe.skipIf(unreachable !== undefined)('probe: a lock on a view stalls the catalog', () => {
  let server: SidecacheServer;
  let port: number;
  let direct: pg.Client;
  let locker: pg.Client;
  const t = unique('pr_t');
  const v = unique('pr_v');

  beforeAll(async () => {
    server = await startSidecache(`postgres:\n  - name: main\n    listen: "127.0.0.1:0"\n    upstream: "postgres://${PG.host}:${PG.port}?sslmode=disable"\n`, {
      planWaitMs: 300,
    });
    port = server.postgresListeners[0]!.address.port;
    direct = await connect(undefined);
    await direct.query(`CREATE TABLE ${t} (v int); CREATE VIEW ${v} AS SELECT 1 AS x`);
    locker = await connect(undefined);
  });
  afterAll(async () => {
    await locker?.query('ROLLBACK').catch(() => undefined);
    await locker?.end();
    await server?.stop(100);
    await direct?.query(`DROP VIEW IF EXISTS ${v}; DROP TABLE IF EXISTS ${t}`);
    await direct?.end();
  });

  it('reads of an unrelated table keep their hits while another session locks a view', async () => {
    const hits = () => metric(server, 'sidecache_requests_total', { protocol: 'postgres', listener: 'main', result: 'hit' });
    const reader = await connect(port);
    const blocked = await connect(port);
    try {
      const read = `SELECT count(*)::int AS n FROM ${t}`;
      await reader.query(read);
      await locker.query(`BEGIN; LOCK TABLE ${v} IN ACCESS EXCLUSIVE MODE`);
      // PostgreSQL blocks this one too (the lock); its plan question blocks sidecache's catalog.
      const waiting = blocked.query(`SELECT x FROM ${v}`).catch(() => undefined);
      await waitFor(
        async () => (await direct.query(`SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted`)).rows[0].n >= 1,
        'the catalog question to wait on the lock',
      );
      await reader.query(`INSERT INTO ${t} VALUES (1)`);
      expect((await reader.query(read)).rows).toEqual([{ n: 1 }]);
      const before = await hits();
      expect((await reader.query(read)).rows).toEqual([{ n: 1 }]);
      expect(await hits()).toBe(before + 1);
      await locker.query('ROLLBACK');
      await waiting;
    } finally {
      await reader.end();
      await blocked.end();
    }
  });
});
