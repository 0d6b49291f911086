// Memory per cached PostgreSQL result: sidecache in this process (needs --expose-gc), N results of
// one shape stored through its listener, then the growth of heapUsed + external after gc, over the
// wire bytes the store holds (the server's frames it replays). Printed per shape, with what the
// store counts toward cache.maxBytes over the same wire bytes. Run by bench/pg-large.bench.mjs.
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { parseConfig } from '../../dist/config/load.js';
import { Logger } from '../../dist/log.js';
import { SidecacheServer } from '../../dist/server.js';
import { PG } from './pg.mjs';

if (typeof globalThis.gc !== 'function') throw new Error('run with node --expose-gc');

const TABLE = 'sc_bench_entry_memory';
/** Rows per result, and how many results of that shape are stored. */
const SHAPES = [
  { rows: 1, entries: 4000 },
  { rows: 10, entries: 2000 },
  { rows: 100, entries: 400 },
  { rows: 1000, entries: 50 },
];

const admin = new pg.Client(PG);
await admin.connect();
await admin.query(`DROP TABLE IF EXISTS ${TABLE}; CREATE TABLE ${TABLE} (id int PRIMARY KEY, v text);
  INSERT INTO ${TABLE} SELECT g, md5(g::text) FROM generate_series(1, 100000) g; ANALYZE ${TABLE}`);

const config = parseConfig(
  `admin: { listen: "127.0.0.1:0" }\ncache: { maxBytes: 1GiB }\npostgres:\n  - { name: bench, listen: "127.0.0.1:0", upstream: "postgres://${PG.host}:${PG.port}?sslmode=disable", defaultTtl: 1h }\n`,
  'bench.yaml',
);
const server = new SidecacheServer(config, { log: new Logger({ level: 'silent' }), planWaitMs: 10_000 });
await server.start();
const client = new pg.Client({ ...PG, host: '127.0.0.1', port: server.postgresListeners[0].address.port });
await client.connect();
const SQL = `SELECT id, v FROM ${TABLE} WHERE id >= $1 AND id < $1 + $2`;

/** The wire bytes of every stored result. */
function wireBytes() {
  const keys = new Set();
  for (const [, tagged] of server.store.indexedTags()) for (const key of tagged) keys.add(key);
  let bytes = 0;
  for (const key of keys) bytes += server.store.get(key)?.body.length ?? 0;
  return bytes;
}

async function settled() {
  // Let sockets and timers let go of what they hold before measuring.
  await sleep(50);
  for (let i = 0; i < 3; i++) globalThis.gc();
  const { heapUsed, external } = process.memoryUsage();
  return heapUsed + external;
}

try {
  // Warm up: the plan is known and the code paths compiled before anything is measured.
  for (let i = 0; i < 200; i++) await client.query(SQL, [i + 1, 10]);
  console.log('entry memory: rows × entries   wire B/entry   heap+external B/entry   ratio to wire   store-counted ratio');
  for (const { rows, entries } of SHAPES) {
    server.store.invalidate({ all: true });
    const before = await settled();
    const bytesBefore = server.store.bytes;
    for (let i = 0; i < entries; i++) await client.query(SQL, [1 + ((i * rows) % 99_000), rows]);
    const grown = (await settled()) - before;
    const wire = wireBytes();
    const counted = server.store.bytes - bytesBefore;
    if (server.store.size !== entries) throw new Error(`expected ${entries} entries stored, found ${server.store.size}`);
    console.log(
      `entry memory: ${String(rows).padStart(4)} × ${String(entries).padEnd(9)} ${String(Math.round(wire / entries)).padStart(10)}   ${String(Math.round(grown / entries)).padStart(21)}   ${(grown / wire).toFixed(2).padStart(13)}   ${(counted / wire).toFixed(2).padStart(19)}`,
    );
  }
} finally {
  await client.end();
  await server.stop();
  await admin.query(`DROP TABLE IF EXISTS ${TABLE}`);
  await admin.end();
}
