/**
 * The catalog asked in band, on the client's own upstream session: the client sees none of it and
 * its session is as it was — settings, prepared statements (the unnamed one included), transaction
 * — whatever the question did or however it failed; notifications that arrive meanwhile still reach
 * it; and a client that leaves in the middle leaves no session behind.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type pg from 'pg';
import type net from 'node:net';
import type { SidecacheServer } from '../../../src/server.js';
import { bind, execute, parse, query, readMessages, sync } from '../../helpers/pg-bytes.js';
import { connect, PG, pgUnreachable, startPgSidecache, unique } from '../../helpers/pg.js';
import { metric, startSidecache } from '../../helpers/sidecache.js';
import { waitFor } from '../../helpers/wait.js';
import { exchange, rawSession } from './raw-session.js';

const unreachable = await pgUnreachable();

describe.skipIf(unreachable !== undefined)('postgres listener: the catalog in band', () => {
  let server: SidecacheServer;
  let port: number;
  let direct: pg.Client;
  const t = unique('ib_t');
  const v = unique('ib_v');

  beforeAll(async () => {
    direct = await connect(undefined);
    await direct.query(`CREATE TABLE ${t} (id int PRIMARY KEY, v text); INSERT INTO ${t} VALUES (1, 'one'); CREATE VIEW ${v} AS SELECT v FROM ${t}`);
  });
  afterAll(async () => {
    await direct?.query(`DROP VIEW IF EXISTS ${v}; DROP TABLE IF EXISTS ${t}`);
    await direct?.end();
  });
  // One sidecache per test, so the client's session is the only one its questions can go on.
  beforeEach(async () => {
    ({ server, port } = await startPgSidecache());
  });
  afterEach(async () => {
    await server.stop(100);
  });

  const hits = () => metric(server, 'sidecache_requests_total', { protocol: 'postgres', listener: 'main', result: 'hit' });

  /** The session's settings and prepared statements, as the client sees them. */
  async function state(client: pg.Client): Promise<unknown> {
    const { rows } = await client.query(
      `SELECT current_setting('search_path') AS search_path, current_setting('statement_timeout') AS statement_timeout,
              current_setting('lock_timeout') AS lock_timeout, current_setting('transaction_read_only') AS read_only,
              (SELECT array_agg(name ORDER BY name) FROM pg_prepared_statements) AS prepared`,
    );
    return rows[0];
  }

  it("leaves the session's settings and prepared statements as they were, and answers from the cache", async () => {
    const client = await connect(port);
    try {
      await client.query(`SET search_path = public, pg_catalog; SET statement_timeout = '7s'; SET lock_timeout = '3s'`);
      await client.query({ name: 'mine', text: 'SELECT $1::int AS n', values: [1] });
      const before = await state(client);
      expect(before).toMatchObject({ search_path: 'public, pg_catalog', statement_timeout: '7s', lock_timeout: '3s', read_only: 'off', prepared: ['mine'] });
      // Each new text asks the catalog (relations, functions) on this session before it is forwarded.
      for (let i = 0; i < 2; i++) expect((await client.query(`SELECT v FROM ${t} WHERE id = 1`)).rows).toEqual([{ v: 'one' }]);
      for (let i = 0; i < 2; i++) expect((await client.query(`SELECT v FROM ${v}`)).rows).toEqual([{ v: 'one' }]);
      await client.query(`UPDATE ${t} SET v = 'one' WHERE id = 1`);
      expect(await hits()).toBe(2);
      expect(await state(client)).toEqual(before);
    } finally {
      await client.end();
    }
  });

  it("keeps the client's unnamed statement: a Bind to it after a question still finds it", async () => {
    const socket: net.Socket = await rawSession(port, { application_name: 'ib-unnamed' });
    try {
      await exchange(socket, Buffer.concat([parse('', `SELECT v FROM ${t} WHERE id = $1`), sync()]), 1);
      // A write through a named statement: what it reaches is asked on this session after it.
      const wrote = readMessages(
        await exchange(socket, Buffer.concat([parse('w', `UPDATE ${t} SET v = 'one' WHERE id = 1`), bind('w', []), execute(), sync()]), 1),
      );
      expect(wrote.some((m) => m.code === 'E')).toBe(false);
      await waitFor(
        async () =>
          (
            await direct.query(
              `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'ib-unnamed' AND state = 'idle' AND query LIKE '%pg_inherits%'`,
            )
          ).rows[0].n === 1,
        'the question on this session',
      );
      const answer = readMessages(await exchange(socket, Buffer.concat([bind('', ['1']), execute(), sync()]), 1));
      expect(answer.map((m) => m.code)).toEqual(['2', 'D', 'C', 'Z']);
    } finally {
      socket.destroy();
    }
  });

  it('never asks inside the client’s transaction: what a write reaches is asked after its COMMIT', async () => {
    const client = await connect(port);
    try {
      const pid = (await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
      const activity = async () =>
        (await direct.query(`SELECT state, query FROM pg_stat_activity WHERE pid = $1`, [pid])).rows[0] as { state: string; query: string };
      await client.query('BEGIN');
      await client.query(`UPDATE ${t} SET v = 'one' WHERE id = 1`);
      // Had a question run, the session's last statement would be sidecache's, not the UPDATE.
      expect(await activity()).toEqual({ state: 'idle in transaction', query: `UPDATE ${t} SET v = 'one' WHERE id = 1` });
      await client.query('COMMIT');
      await waitFor(
        async () => (await activity()).query.includes('pg_inherits') && (await activity()).state === 'idle',
        'the write-reach question after COMMIT',
      );
    } finally {
      await client.end();
    }
  });

  it('a question that fails (a lock held on a view) leaves nothing behind; notifications sent meanwhile reach the client', async () => {
    const client = await connect(port);
    const locker = await connect(undefined);
    try {
      const pid = (await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
      await client.query(`LISTEN ${t}`);
      const notified = new Promise<string | undefined>((resolve) => client.on('notification', (n) => resolve(n.payload)));
      await locker.query(`BEGIN; LOCK TABLE ${v} IN ACCESS EXCLUSIVE MODE`);
      // The view's plan asks pg_get_viewdef, which waits on the lock (100 ms, then it gives up).
      const read = client.query(`SELECT v FROM ${v} WHERE v = 'x'`);
      await waitFor(
        async () => (await direct.query(`SELECT count(*)::int AS n FROM pg_locks WHERE pid = $1 AND NOT granted`, [pid])).rows[0].n > 0,
        'the question to wait',
      );
      await direct.query(`NOTIFY ${t}, 'during'`);
      await locker.query('ROLLBACK');
      expect((await read).rows).toEqual([]);
      expect(await notified).toBe('during');
      expect(await state(client)).toMatchObject({ read_only: 'off', prepared: null, search_path: '"$user", public' });
    } finally {
      await locker.query('ROLLBACK').catch(() => undefined);
      await locker.end();
      await client.end();
    }
  });

  it('a client that leaves while its session carries a question leaves no session behind', async () => {
    const locker = await connect(undefined);
    const socket = await rawSession(port, { application_name: 'ib-leaver' });
    try {
      const pid = async () => (await direct.query(`SELECT pid FROM pg_stat_activity WHERE application_name = 'ib-leaver'`)).rows.map((r) => r.pid as number)[0];
      expect(await pid()).toBeDefined();
      await locker.query(`BEGIN; LOCK TABLE ${v} IN ACCESS EXCLUSIVE MODE`);
      socket.write(query(`SELECT v FROM ${v} WHERE v = 'y'`));
      await waitFor(
        async () => (await direct.query(`SELECT count(*)::int AS n FROM pg_locks WHERE pid = $1 AND NOT granted`, [await pid()])).rows[0].n > 0,
        'the question to wait',
      );
      socket.destroy();
      await waitFor(async () => (await pid()) === undefined, 'the upstream session to end');
      expect(server.postgresListeners[0]!.upstreamConnections).toBe(0);
    } finally {
      await locker.query('ROLLBACK').catch(() => undefined);
      await locker.end();
      socket.destroy();
    }
  });

  it('a client that leaves in the middle of an extended batch leaves no session behind and nothing stored', async () => {
    const socket = await rawSession(port, { application_name: 'ib-batch' });
    try {
      const sessions = async () =>
        (await direct.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'ib-batch'`)).rows[0].n as number;
      expect(await sessions()).toBe(1);
      const stored = server.store.size;
      // A cacheable read held back for its Sync, then a write forwarded: no Sync ever comes.
      socket.write(Buffer.concat([parse('', `SELECT v FROM ${t} WHERE id = $1`), bind('', ['1']), execute()]));
      socket.write(Buffer.concat([parse('w2', `UPDATE ${t} SET v = 'one' WHERE id = 1`), bind('w2', []), execute()]));
      await waitFor(
        async () => (await direct.query(`SELECT query FROM pg_stat_activity WHERE application_name = 'ib-batch'`)).rows[0]?.query.startsWith('UPDATE'),
        'the write to run, its transaction open',
      );
      socket.destroy();
      await waitFor(async () => (await sessions()) === 0, 'the upstream session to end');
      expect(server.store.size).toBe(stored);
      expect(server.postgresListeners[0]!.upstreamConnections).toBe(0);
    } finally {
      socket.destroy();
    }
  });

  it('a replication connection is passed through and never carries a question', async () => {
    const replication = await connect(port, { replication: 'database' } as Partial<pg.ClientConfig>);
    try {
      const { rows } = await replication.query('IDENTIFY_SYSTEM');
      expect(rows[0]).toHaveProperty('systemid');
      // DISCARD ALL ends a taint, not this: the session stays out of the cache.
      await replication.query('DISCARD ALL');
      for (let i = 0; i < 2; i++) expect((await replication.query(`SELECT v FROM ${t} WHERE id = 1`)).rows).toEqual([{ v: 'one' }]);
      expect(await hits()).toBe(0);
      expect(await metric(server, 'sidecache_postgres_catalog_errors_total', { listener: 'main' })).toBe(0);
    } finally {
      await replication.end();
    }
  });

  it('a write inside a long transaction asks nothing until its COMMIT, and leaves the session usable', async () => {
    // Its own sidecache, whose questions wait 50 ms for an idle session: the transaction outlasts that.
    const quick = await startSidecache(
      `postgres:\n  - name: main\n    listen: "127.0.0.1:0"\n    upstream: "postgres://${PG.host}:${PG.port}?sslmode=disable"\n`,
      {
        planWaitMs: 10_000,
        catalogWaitMs: 50,
      },
    );
    const client = await connect(quick.postgresListeners[0]!.address.port);
    try {
      const quickHits = () => metric(quick, 'sidecache_requests_total', { protocol: 'postgres', listener: 'main', result: 'hit' });
      await client.query('BEGIN');
      await client.query(`UPDATE ${t} SET v = 'one' WHERE id = 1`);
      await new Promise((resolve) => setTimeout(resolve, 200));
      await client.query('COMMIT');
      for (let i = 0; i < 2; i++) expect((await client.query(`SELECT v FROM ${t} WHERE id = 1`)).rows).toEqual([{ v: 'one' }]);
      expect(await quickHits()).toBe(1);
      expect(await metric(quick, 'sidecache_postgres_catalog_errors_total', { listener: 'main' })).toBe(0);
    } finally {
      await client.end();
      await quick.stop(100);
    }
  });
});
