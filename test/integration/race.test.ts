/**
 * The guarantee that matters most: once an invalidation has been applied, no read returns a value
 * older than the last write committed before it was published. The interleaving that threatens it
 * is forced, not hoped for: a fill is held in flight after it read the old value, the write and its
 * invalidation are applied, a second read joins the held fill, and only then is the fill let go.
 * Every read that started after the invalidation must see the new value; the same run without the
 * fill-race guard must be caught.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import type { SidecacheServer } from '../../src/server.js';
import { connect, PG, pgUnreachable, unique } from '../helpers/pg.js';
import { httpListenerYaml, metric, startSidecache } from '../helpers/sidecache.js';
import { gate, waitFor } from '../helpers/wait.js';

const unreachable = await pgUnreachable();

/** Values returned by the reads that started after the invalidation of `committed` was applied. */
interface RaceResult {
  committed: number;
  /** The read that joined the held fill, then a read once everything settled. */
  after: number[];
}

/** Reads that started after the invalidation for `committed` was applied yet returned less. */
function stale(result: RaceResult): number {
  return result.after.filter((v) => v < result.committed).length;
}

async function httpRace(unsafeWithoutFillGuard: boolean): Promise<RaceResult> {
  let value = 0;
  const held = gate();
  let calls = 0;
  const origin = http.createServer((_req, res) => {
    const seen = value;
    const send = () => {
      res.writeHead(200, { 'cache-control': 'max-age=60', 'surrogate-key': 'item' });
      res.end(String(seen));
    };
    // The first fill reads the value, then waits; later calls answer at once.
    if (++calls === 1) void held.promise.then(send);
    else send();
  });
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  const server = await startSidecache(httpListenerYaml(`http://127.0.0.1:${(origin.address() as AddressInfo).port}`), { unsafeWithoutFillGuard });
  try {
    const base = server.httpListeners[0]!.url;
    const read = async () => Number(await (await fetch(`${base}/item`)).text());
    const before = read();
    await waitFor(() => calls === 1, 'the first fill to reach the origin');
    value = 1;
    // The admin endpoint answers once the local store has applied the message.
    await fetch(`${server.adminUrl}/invalidate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"tags":["item"]}' });
    const joined = read();
    await waitFor(
      async () => (await metric(server, 'sidecache_coalesced_total', { protocol: 'http', listener: 'api' })) === 1,
      'the second read to join the held fill',
    );
    held.release();
    // The read that began before the invalidation may return either value.
    expect([0, 1]).toContain(await before);
    return { committed: 1, after: [await joined, await read()] };
  } finally {
    held.release();
    await server.stop(100);
    origin.closeAllConnections();
    await new Promise((r) => origin.close(r));
  }
}

async function pgRace(unsafeWithoutFillGuard: boolean): Promise<RaceResult> {
  const table = unique('race');
  const channel = unique('chan');
  const held = unique('held');
  const direct = await connect(undefined);
  const locker = await connect(undefined);
  // An IMMUTABLE function (so the statement is cacheable) that waits on an advisory lock the test holds:
  // the statement has already read the row with its snapshot when it blocks.
  await direct.query(`CREATE TABLE ${table} (id int PRIMARY KEY, v int); INSERT INTO ${table} VALUES (1, 0);
    CREATE FUNCTION ${held}(int) RETURNS int IMMUTABLE LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_advisory_xact_lock_shared(hashtext('${held}')); RETURN $1; END $$`);
  await locker.query(`SELECT pg_advisory_lock(hashtext('${held}'))`);
  const server: SidecacheServer = await startSidecache(
    `postgres:\n  - { name: main, listen: "127.0.0.1:0", upstream: "postgres://${PG.host}:${PG.port}?sslmode=disable" }\n` +
      `invalidation:\n  - { type: postgres, url: "postgres://${PG.user}@${PG.host}:${PG.port}/${PG.database}", channel: ${channel} }\n`,
    // The NOTIFY drops the statement's plan; the joining read must get it again, however loaded the machine.
    { unsafeWithoutFillGuard, planWaitMs: 10_000 },
  );
  const port = server.postgresListeners[0]!.address.port;
  const readers = await Promise.all([connect(port), connect(port)]);
  const sql = `SELECT ${held}(v) AS v FROM ${table} WHERE id = 1`;
  const read = async (i: number) => (await readers[i]!.query(sql)).rows[0].v as number;
  try {
    const before = read(0);
    const waiting = async () =>
      (await direct.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event = 'advisory' AND query = $1`, [sql])).rows[0].n as number;
    await waitFor(async () => (await waiting()) === 1, 'the first fill to hold on the advisory lock');
    // NOTIFY is delivered at commit: the message follows the write it announces.
    await direct.query(`BEGIN; UPDATE ${table} SET v = 1 WHERE id = 1; SELECT pg_notify('${channel}', '${table}'); COMMIT`);
    await waitFor(async () => (await metric(server, 'sidecache_invalidations_total', { source: `postgres:${channel}` })) === 1, 'the NOTIFY to be applied');
    const joined = read(1);
    await waitFor(
      async () => (await metric(server, 'sidecache_coalesced_total', { protocol: 'postgres', listener: 'main' })) === 1,
      'the second read to join the held fill',
    );
    await locker.query(`SELECT pg_advisory_unlock(hashtext('${held}'))`);
    // The read that began before the invalidation returns the value of its snapshot.
    expect(await before).toBe(0);
    return { committed: 1, after: [await joined, await read(0)] };
  } finally {
    await locker.end();
    for (const r of readers) await r.end();
    await server.stop(100);
    await direct.query(`DROP TABLE ${table}; DROP FUNCTION ${held}(int)`);
    await direct.end();
  }
}

describe('race-free fills: no read older than an applied invalidation', () => {
  it('HTTP: holds with the guard, and the check catches the race without it', async () => {
    const guarded = await httpRace(false);
    expect(guarded.after).toEqual([1, 1]);
    expect(stale(guarded)).toBe(0);
    const unguarded = await httpRace(true);
    expect(stale(unguarded)).toBeGreaterThan(0);
  });

  it.skipIf(unreachable !== undefined)('PostgreSQL over NOTIFY: holds with the guard, and the check catches the race without it', async () => {
    const guarded = await pgRace(false);
    expect(guarded.after).toEqual([1, 1]);
    expect(stale(guarded)).toBe(0);
    const unguarded = await pgRace(true);
    expect(stale(unguarded)).toBeGreaterThan(0);
  });
});
