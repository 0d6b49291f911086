// Invalidation latency: publish → entry gone from the store, for Redis pub/sub, Redis Streams
// (XADD → the redis-stream bus) and Postgres NOTIFY, over a few thousand messages, against the
// bare transport (publish → a plain subscriber, or a plain XREAD BLOCK loop, receives it) measured
// in the same run. Target: p99 < 10 ms on loopback for each bus. Needs Redis at REDIS_URL and
// PostgreSQL at PGHOST/PGPORT.
import diagnostics from 'node:diagnostics_channel';
import { Redis } from 'ioredis';
import pg from 'pg';
import { parseConfig } from '../dist/config/load.js';
import { channels } from '../dist/events.js';
import { Logger } from '../dist/log.js';
import { SidecacheServer } from '../dist/server.js';

const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 3000);
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
let gone;
diagnostics.subscribe(channels.invalidation.name, (m) => {
  if (m.store === server.store && !server.store.has('k')) gone?.();
});
const entryGone = () => {
  server.store.set('k', { body: Buffer.from('x'), ttlMs: 60_000, tags: ['table:bench'] });
  return new Promise((resolve) => (gone = resolve));
};

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
try {
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
  for (const [bus, bare, base, side] of rows) {
    const target = side.p99 < TARGET_P99_MS ? 'ok' : 'MISSED';
    console.log(
      `${bus} ${bare} ${fmt(base)}   sidecache publish→gone ${fmt(side)}   p99 ratio ${(side.p99 / base.p99).toFixed(2)}   target p99 < ${TARGET_P99_MS} ms: ${target}`,
    );
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
