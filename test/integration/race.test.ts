/**
 * The guarantee that matters most: once an invalidation has been applied, no read returns a value
 * older than the last write committed before it was published. Readers and a writer race for a
 * while; each run is checked, and the same run without the fill-race guard must be caught.
 */
import diagnostics from 'node:diagnostics_channel';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { channels, type InvalidationEvent } from '../../src/events.js';
import type { SidecacheServer } from '../../src/server.js';
import { connect, PG, pgUnreachable, unique } from '../helpers/pg.js';
import { httpListenerYaml, startSidecache } from '../helpers/sidecache.js';

const RACE_MS = Number(process.env.RACE_MS ?? 1500);
const READERS = 8;
const unreachable = await pgUnreachable();

interface Read {
  started: number;
  value: number;
}

/** Reads that started after the invalidation for value V was applied yet returned less than V. */
function stale(reads: Read[], applied: { at: number; value: number }[]): number {
  let count = 0;
  for (const read of reads) {
    let floor = -Infinity;
    for (const a of applied) if (a.at <= read.started && a.value > floor) floor = a.value;
    if (read.value < floor) count++;
  }
  return count;
}

async function race(read: () => Promise<number>, write: () => Promise<number>): Promise<{ reads: Read[]; applied: { at: number; value: number }[] }> {
  const reads: Read[] = [];
  const applied: { at: number; value: number }[] = [];
  const until = performance.now() + RACE_MS;
  const reader = async () => {
    while (performance.now() < until) {
      const started = performance.now();
      reads.push({ started, value: await read() });
    }
  };
  const writer = async () => {
    while (performance.now() < until) {
      const value = await write();
      applied.push({ at: performance.now(), value });
      await new Promise((r) => setTimeout(r, 3));
    }
  };
  await Promise.all([writer(), ...Array.from({ length: READERS }, reader)]);
  return { reads, applied };
}

async function httpRace(unsafeWithoutFillGuard: boolean): Promise<{ reads: number; stale: number }> {
  let value = 0;
  const origin = http.createServer((_req, res) => {
    const seen = value;
    setTimeout(() => {
      res.writeHead(200, { 'cache-control': 'max-age=60', 'surrogate-key': 'item' });
      res.end(String(seen));
    }, Math.random() * 15);
  });
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  const server = await startSidecache(httpListenerYaml(`http://127.0.0.1:${(origin.address() as AddressInfo).port}`), { unsafeWithoutFillGuard });
  try {
    const base = server.httpListeners[0]!.url;
    const result = await race(
      async () => Number(await (await fetch(`${base}/item`)).text()),
      async () => {
        value++;
        const committed = value;
        // The admin endpoint answers once the local store has applied the message.
        await fetch(`${server.adminUrl}/invalidate`, { method: 'POST', body: '{"tags":["item"]}' });
        return committed;
      },
    );
    return { reads: result.reads.length, stale: stale(result.reads, result.applied) };
  } finally {
    await server.stop(100);
    origin.closeAllConnections();
    await new Promise((r) => origin.close(r));
  }
}

async function pgRace(unsafeWithoutFillGuard: boolean): Promise<{ reads: number; stale: number }> {
  const table = unique('race');
  const channel = unique('chan');
  const slow = unique('slow');
  const direct = await connect(undefined);
  await direct.query(`CREATE TABLE ${table} (id int PRIMARY KEY, v int); INSERT INTO ${table} VALUES (1, 0);
    CREATE FUNCTION ${slow}(int) RETURNS int IMMUTABLE LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(random() * 0.01); RETURN $1; END $$`);
  const server: SidecacheServer = await startSidecache(
    `postgres:\n  - { name: main, listen: "127.0.0.1:0", upstream: "postgres://${PG.host}:${PG.port}?sslmode=disable" }\n` +
      `invalidation:\n  - { type: postgres, url: "postgres://${PG.user}@${PG.host}:${PG.port}/${PG.database}", channel: ${channel} }\n`,
    { unsafeWithoutFillGuard },
  );
  const readers = await Promise.all(Array.from({ length: READERS }, () => connect(server.postgresListeners[0]!.address.port)));
  let next = 0;
  const waiting = new Map<number, () => void>();
  let appliedCount = 0;
  const onInvalidation = (m: unknown) => {
    const e = m as InvalidationEvent;
    if (e.store !== server.store || e.source !== `postgres:${channel}`) return;
    appliedCount++;
    waiting.get(appliedCount)?.();
  };
  diagnostics.subscribe(channels.invalidation.name, onInvalidation);
  try {
    let turn = 0;
    const result = await race(
      async () => {
        const client = readers[turn++ % READERS]!;
        return (await client.query(`SELECT ${slow}(v) AS v FROM ${table} WHERE id = 1`)).rows[0].v as number;
      },
      async () => {
        next++;
        const applied = new Promise<void>((resolve) => waiting.set(next, resolve));
        // NOTIFY is delivered at commit: the message follows the write it announces.
        await direct.query(`BEGIN; UPDATE ${table} SET v = ${next} WHERE id = 1; SELECT pg_notify('${channel}', '${table}'); COMMIT`);
        await applied;
        return next;
      },
    );
    return { reads: result.reads.length, stale: stale(result.reads, result.applied) };
  } finally {
    diagnostics.unsubscribe(channels.invalidation.name, onInvalidation);
    for (const r of readers) await r.end();
    await server.stop(100);
    await direct.query(`DROP TABLE ${table}; DROP FUNCTION ${slow}(int)`);
    await direct.end();
  }
}

describe('race-free fills: no read older than an applied invalidation', () => {
  it('HTTP: holds with the guard, and the check catches the race without it', async () => {
    const guarded = await httpRace(false);
    expect(guarded.reads).toBeGreaterThan(50);
    expect(guarded.stale).toBe(0);
    const unguarded = await httpRace(true);
    expect(unguarded.stale).toBeGreaterThan(0);
  });

  it.skipIf(unreachable !== undefined)('PostgreSQL over NOTIFY: holds with the guard, and the check catches the race without it', async () => {
    const guarded = await pgRace(false);
    expect(guarded.reads).toBeGreaterThan(50);
    expect(guarded.stale).toBe(0);
    const unguarded = await pgRace(true);
    expect(unguarded.stale).toBeGreaterThan(0);
  });
});
