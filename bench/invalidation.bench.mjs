// Invalidation latency: publish → entry gone from the store, for Redis pub/sub and Postgres
// NOTIFY, over a few thousand messages, against the bare transport (publish → a plain subscriber
// receives it) measured in the same run. Needs Redis at REDIS_URL and PostgreSQL at PGHOST/PGPORT.
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
    `admin: { listen: "127.0.0.1:0" }\ninvalidation:\n  - { type: redis, url: "${REDIS_URL}", channel: ${channel} }\n  - { type: postgres, url: "postgres://${PG.user}@${PG.host}:${PG.port}/${PG.database}", channel: ${channel} }\n`,
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
  console.log(`redis   bare subscriber ${fmt(redisBare)}   sidecache publish→gone ${fmt(redisSide)}   p99 ratio ${(redisSide.p99 / redisBare.p99).toFixed(2)}`);
  console.log(`notify  bare listener   ${fmt(pgBare)}   sidecache publish→gone ${fmt(pgSide)}   p99 ratio ${(pgSide.p99 / pgBare.p99).toFixed(2)}`);
} finally {
  redisPub.disconnect();
  redisSub.disconnect();
  await pgPub.end();
  await pgSub.end();
  await server.stop(100);
}
