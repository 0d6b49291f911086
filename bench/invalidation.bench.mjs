// Invalidation latency: publish → entry gone from the store, for Redis pub/sub, Redis Streams
// (XADD → the redis-stream bus), Postgres NOTIFY and the postgres-wal bus (an UPDATE's commit →
// entry gone), over a few thousand messages, against the bare transport (publish → a plain
// subscriber, or a plain XREAD BLOCK loop, receives it; for WAL a plain LISTEN on a NOTIFY that a
// trigger sends in the same commit) measured in the same run. Target: p99 < 10 ms on loopback for
// each bus. Then two replicas A and B (child processes) on each bus: a write through A → B answers
// fresh (bench/lib/replica-window.mjs). Needs Redis at REDIS_URL and PostgreSQL at PGHOST/PGPORT;
// the postgres-wal bus runs against a throwaway wal_level=logical cluster (bench/lib/wal-cluster.mjs),
// skipped with the reason when one cannot be made.
import diagnostics from 'node:diagnostics_channel';
import { Redis } from 'ioredis';
import pg from 'pg';
import { parseConfig } from '../dist/config/load.js';
import { channels } from '../dist/events.js';
import { Logger } from '../dist/log.js';
import { SidecacheServer } from '../dist/server.js';
import { createTable, fmtWindow, replicaWindows } from './lib/replica-window.mjs';
import { startWalCluster, walClusterUnavailable } from './lib/wal-cluster.mjs';

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 3000);
/** Writes through replica A measured per bus and kind (HTTP, PostgreSQL). */
const REPLICA_WRITES = Number(process.env.BENCH_REPLICA_WRITES ?? 300);
/** Which parts run: a comma-separated list of `single` (one process, publish → gone) and `replicas`. */
const PARTS = (process.env.BENCH_PARTS ?? 'single,replicas').split(',');
/** Buses of the replica part (redis, stream, notify, wal). */
const REPLICA_BUSES = (process.env.BENCH_REPLICA_BUSES ?? 'redis,stream,notify,wal').split(',');
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const PG = {
  host: process.env.PGHOST ?? '127.0.0.1',
  port: Number(process.env.PGPORT ?? 5432),
  user: process.env.PGUSER ?? 'postgres',
  database: process.env.PGDATABASE ?? 'test',
};
const channel = `sc_bench_${process.pid}`;
const stream = `${channel}_stream`;
const bareStream = `${channel}_bare_stream`;
const TARGET_P99_MS = 10;

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
function summary(times) {
  const sorted = [...times].sort((a, b) => a - b);
  return { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) };
}

/** Publishes one message at a time and waits for `arrived` to fire for it. */
async function measure(publish, arrivals) {
  const times = [];
  for (let i = 0; i < MESSAGES + 100; i++) {
    const t0 = process.hrtime.bigint();
    const arrived = arrivals();
    await publish(i);
    await arrived;
    if (i >= 100) times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return summary(times);
}

const server = new SidecacheServer(
  parseConfig(
    `admin: { listen: "127.0.0.1:0" }\ninvalidation:\n  - { type: redis, url: "${REDIS_URL}", channel: ${channel} }\n  - { type: redis-stream, url: "${REDIS_URL}", stream: ${stream} }\n  - { type: postgres, url: "postgres://${PG.user}@${PG.host}:${PG.port}/${PG.database}", channel: ${channel} }\n`,
    'bench.yaml',
    {},
  ),
  { log: new Logger({ level: 'silent' }) },
);
await server.start();
/** `() => Promise`: stores an entry tagged `tag` in `srv` and resolves once an invalidation removed it. */
function entryGoneOn(srv, tag) {
  let gone;
  diagnostics.subscribe(channels.invalidation.name, (m) => {
    if (m.store === srv.store && !srv.store.has('k')) gone?.();
  });
  return () => {
    srv.store.set('k', { body: Buffer.from('x'), ttlMs: 60_000, tags: [tag] });
    return new Promise((resolve) => (gone = resolve));
  };
}
const entryGone = entryGoneOn(server, 'table:bench');

const redisPub = new Redis(REDIS_URL);
const redisSub = new Redis(REDIS_URL);
let redisGot;
await redisSub.subscribe(`${channel}_bare`);
redisSub.on('message', () => redisGot?.());
const pgPub = new pg.Client(PG);
const pgSub = new pg.Client(PG);
await pgPub.connect();
await pgSub.connect();
let pgGot;
await pgSub.query(`LISTEN ${channel}_bare`);
pgSub.on('notification', () => pgGot?.());
// The bare stream reader: XREAD BLOCK from the last ID it saw, as a writer's own consumer would.
const streamSub = new Redis(REDIS_URL);
await redisPub.del(stream, bareStream);
let streamGot;
let reading = true;
const bareReader = (async () => {
  let last = '0-0';
  while (reading) {
    const reply = await streamSub.xread('BLOCK', 1000, 'STREAMS', bareStream, last).catch(() => null);
    for (const [, entries] of reply ?? []) {
      for (const [id] of entries) {
        last = id;
        streamGot?.();
      }
    }
  }
})();

const fmt = (r) => `p50 ${r.p50.toFixed(3)} ms  p99 ${r.p99.toFixed(3)} ms`;
const walTable = `sc_bench_wal_${process.pid}`;

/**
 * The postgres-wal bus on `cluster`: an UPDATE's commit → entry gone, against a bare LISTEN on the
 * NOTIFY a trigger sends in the same commit (PostgreSQL delivers NOTIFY at commit, §NOTIFY).
 */
async function walRow(cluster) {
  const walServer = new SidecacheServer(
    parseConfig(
      `admin: { listen: "127.0.0.1:0" }\ninvalidation:\n  - { type: postgres-wal, url: "${cluster.url}", publication: ${walTable}, createPublication: true, tables: [${walTable}] }\n`,
      'bench-wal.yaml',
      {},
    ),
    { log: new Logger({ level: 'silent' }) },
  );
  const writer = new pg.Client(cluster.url);
  const listener = new pg.Client(cluster.url);
  await Promise.all([writer.connect(), listener.connect()]);
  await writer.query(`CREATE TABLE ${walTable} (id int PRIMARY KEY, v int NOT NULL); INSERT INTO ${walTable} VALUES (0, 0);
    CREATE FUNCTION ${walTable}_notify() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_notify('${walTable}', ''); RETURN NULL; END $$;
    CREATE TRIGGER ${walTable}_notify AFTER UPDATE ON ${walTable} FOR EACH STATEMENT EXECUTE FUNCTION ${walTable}_notify();`);
  let got;
  await listener.query(`LISTEN ${walTable}`);
  listener.on('notification', () => got?.());
  await walServer.start();
  try {
    const update = () => writer.query(`UPDATE ${walTable} SET v = v + 1 WHERE id = 0`);
    const bare = await measure(update, () => new Promise((r) => (got = r)));
    const side = await measure(update, entryGoneOn(walServer, `table:${walTable}`));
    return ['wal    ', 'bare LISTEN    ', bare, side];
  } finally {
    await walServer.stop(100);
    await Promise.all([writer.end(), listener.end()]);
  }
}

const noCluster = walClusterUnavailable();
if (noCluster !== undefined) console.warn(`SKIPPED: the postgres-wal bus: no throwaway wal_level=logical cluster: ${noCluster}`);
const cluster =
  noCluster === undefined ? await startWalCluster().catch((err) => void console.warn(`SKIPPED: the postgres-wal bus: ${err.message}`)) : undefined;
try {
  if (PARTS.includes('single')) {
    const redisBare = await measure(
      (i) => redisPub.publish(`${channel}_bare`, `m${i}`),
      () => new Promise((r) => (redisGot = r)),
    );
    const redisSide = await measure(() => redisPub.publish(channel, 'bench'), entryGone);
    const pgBare = await measure(
      (i) => pgPub.query(`SELECT pg_notify('${channel}_bare', 'm${i}')`),
      () => new Promise((r) => (pgGot = r)),
    );
    const pgSide = await measure(() => pgPub.query(`SELECT pg_notify('${channel}', 'bench')`), entryGone);
    const streamBare = await measure(
      (i) => redisPub.xadd(bareStream, 'MAXLEN', '~', 1000, '*', 'msg', `m${i}`),
      () => new Promise((r) => (streamGot = r)),
    );
    const streamSide = await measure(() => redisPub.xadd(stream, 'MAXLEN', '~', 1000, '*', 'msg', 'bench'), entryGone);
    const rows = [
      ['redis  ', 'bare subscriber', redisBare, redisSide],
      ['stream ', 'bare XREAD     ', streamBare, streamSide],
      ['notify ', 'bare listener  ', pgBare, pgSide],
    ];
    if (cluster !== undefined) rows.push(await walRow(cluster));
    for (const [bus, bare, base, side] of rows) {
      const target = side.p99 < TARGET_P99_MS ? 'ok' : 'MISSED';
      console.log(
        `${bus} ${bare} ${fmt(base)}   sidecache publish→gone ${fmt(side)}   p99 ratio ${(side.p99 / base.p99).toFixed(2)}   target p99 < ${TARGET_P99_MS} ms: ${target}`,
      );
    }
  }
} finally {
  reading = false;
  streamSub.disconnect();
  await bareReader;
  await redisPub.del(stream, bareStream);
  redisPub.disconnect();
  redisSub.disconnect();
  await pgPub.end();
  await pgSub.end();
  await server.stop(100);
}

// --- two replicas: a write through A → B answers fresh ---
const repTable = `sc_bench_rep_${process.pid}`;
const admin = new pg.Client(PG);
await admin.connect();
await createTable(admin, repTable);
const pgUrl = `postgres://${PG.user}@${PG.host}:${PG.port}/${PG.database}`;
const replicaBuses = [
  ['redis  ', `{ type: redis, url: "${REDIS_URL}", channel: ${channel}_rep }`, PG, ['http', 'pg']],
  ['stream ', `{ type: redis-stream, url: "${REDIS_URL}", stream: ${stream}_rep }`, PG, ['http', 'pg']],
  ['notify ', `{ type: postgres, url: "${pgUrl}", channel: ${channel}_rep }`, PG, ['http', 'pg']],
];
let walClient;
if (cluster !== undefined) {
  walClient = new pg.Client(cluster.url);
  await walClient.connect();
  await createTable(walClient, repTable);
  // The WAL bus publishes nothing (every commit is in the stream already): only writes on the database reach B.
  const walUpstream = { host: '127.0.0.1', port: cluster.port, user: 'postgres', database: 'postgres' };
  replicaBuses.push([
    'wal    ',
    `{ type: postgres-wal, url: "${cluster.url}", publication: ${repTable}, createPublication: true, tables: [${repTable}] }`,
    walUpstream,
    ['pg'],
  ]);
}
try {
  if (PARTS.includes('replicas')) console.log(`two replicas, ${REPLICA_WRITES} writes through A per bus and protocol, reads through B until fresh:`);
  for (const [bus, busYaml, upstream, kinds] of replicaBuses) {
    if (!PARTS.includes('replicas') || !REPLICA_BUSES.includes(bus.trim())) continue;
    const results = await replicaWindows({ busYaml, upstream, table: repTable, writes: REPLICA_WRITES, kinds });
    for (const [kind, r] of Object.entries(results)) console.log(`${bus} ${kind === 'http' ? 'HTTP POST  ' : 'SQL UPDATE '} ${fmtWindow(r)}`);
  }
} finally {
  const redis = new Redis(REDIS_URL);
  await redis.del(`${stream}_rep`);
  redis.disconnect();
  await admin.query(`DROP TABLE IF EXISTS ${repTable}`);
  await admin.end();
  await walClient?.end();
  await cluster?.stop();
}
