// Soak (issue 16): `npm run build && node bench/soak.mjs` (SOAK_MINUTES=2 for a short run; default 10).
// Not a *.bench.mjs file, so `npm run bench` does not run it. Needs Redis at REDIS_URL and PostgreSQL
// at PGHOST/PGPORT (database PGDATABASE, default test).
//
// sidecache (the built CLI, in a child process) runs one HTTP listener in front of an origin in this
// process (a JSON document per key carrying its version, max-age=300, a Surrogate-Key tag) and one
// PostgreSQL listener in front of the machine's server (a table of id, version), with a Redis bus
// reached through a TCP proxy here. A writer bumps a random key of each every ~200 ms (the origin's
// memory; an UPDATE made directly on PostgreSQL) and publishes the invalidation on Redis; readers
// read random keys through both listeners. Every SOAK_CUT_EVERY_S the proxy resets the bus
// connection and refuses new ones for SOAK_CUT_FOR_S. A read is stale when it returns a version
// older than one whose invalidation was published more than SOAK_GRACE_MS before the read began;
// reads that began while the bus was down (from the cut, or from the last sample of
// sidecache_bus_connected that read 1, to the first sample reading 1 again) are counted apart.
// Exit 1 when a read was stale outside those windows, or connections or heap did not stay flat.
// SOAK_ON_GAP=keep (no flush after a gap) must fail: it shows the soak sees lost invalidations.
//
// SOAK_REPLICAS=2 runs the two-replica stale-read hunt instead (bench/lib/soak-replicas.mjs:
// writes through replica A, reads through A and B, one bus outage; SOAK_BUS, SOAK_SECONDS).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import pg from 'pg';
import { Pool } from 'undici';
import { parsePromText, sumOf, valueOf } from './lib/prom-text.mjs';
import { DownWindows, VersionHistory } from './lib/staleness.mjs';
import { startTcpProxy } from './lib/tcp-proxy.mjs';

if (Number(process.env.SOAK_REPLICAS ?? 1) === 2) {
  await import('./lib/soak-replicas.mjs');
  // Its report is out and its processes are stopped; the single-replica soak below must not run.
  process.exit();
}

const MINUTES = Number(process.env.SOAK_MINUTES ?? 10);
const CUT_EVERY_S = Number(process.env.SOAK_CUT_EVERY_S ?? 60);
const CUT_FOR_S = Number(process.env.SOAK_CUT_FOR_S ?? 3);
const GRACE_MS = Number(process.env.SOAK_GRACE_MS ?? 500);
const READERS = Number(process.env.SOAK_READERS ?? 8);
const KEYS = Number(process.env.SOAK_KEYS ?? 200);
/** Each reader pauses this long between reads, so that the soak leaves the machine's 2 cores some room. */
const READ_PAUSE_MS = Number(process.env.SOAK_READ_PAUSE_MS ?? 2);
/** `keep` turns off the flush after a gap: the soak should then fail, which shows it can see lost invalidations. */
const ON_GAP = process.env.SOAK_ON_GAP ?? 'flush';
const WRITE_EVERY_MS = 200;
const BUS_POLL_MS = 100;
const SAMPLE_EVERY_MS = 10_000;
const WARMUP_MS = 30_000;
/**
 * "Flat": the last sample within this fraction of the first one after warm-up. The heap is judged by
 * its floor (the least seen by the 100 ms polls since the previous sample): a single reading lands
 * anywhere on the collector's sawtooth, the floor rises only with what stays reachable.
 */
const FLAT_WITHIN = 0.2;
const REDIS_URL = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const PG = {
  host: process.env.PGHOST ?? '127.0.0.1',
  port: Number(process.env.PGPORT ?? 5432),
  user: process.env.PGUSER ?? 'postgres',
  database: process.env.PGDATABASE ?? 'test',
};
const channel = `sc_soak_${process.pid}`;
const table = `sc_soak_${process.pid}`;
const root = new URL('../', import.meta.url);
const t0 = Date.now();
const elapsed = (t = Date.now()) => ((t - t0) / 1000).toFixed(1).padStart(6);
const mib = (b) => `${(b / 2 ** 20).toFixed(1)} MiB`;

// --- the origin: one JSON document per key, its version bumped by the writer ---
const httpVersions = new Array(KEYS).fill(1);
const origin = http.createServer((req, res) => {
  const key = Number(/^\/k\/(\d+)$/.exec(req.url)?.[1]);
  if (!(key >= 0 && key < KEYS)) return void res.writeHead(404).end();
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=300', 'surrogate-key': `k${key}` });
  res.end(JSON.stringify({ key, version: httpVersions[key] }));
});
await new Promise((resolve) => origin.listen(0, '127.0.0.1', resolve));

// --- the table, and the bus's way to Redis ---
const direct = new pg.Client(PG);
await direct.connect();
await direct.query(`DROP TABLE IF EXISTS ${table}; CREATE TABLE ${table} (id int PRIMARY KEY, version int NOT NULL);
  INSERT INTO ${table} SELECT g, 1 FROM generate_series(0, ${KEYS - 1}) g`);
const proxy = await startTcpProxy({ host: REDIS_URL.hostname, port: Number(REDIS_URL.port || 6379) });
const publisher = new Redis(REDIS_URL.href);

// --- sidecache, in a child process so that its descriptors and heap are its own ---
const dir = mkdtempSync(join(tmpdir(), 'sidecache-soak-'));
const config = join(dir, 'soak.yaml');
writeFileSync(
  config,
  [
    'admin: { listen: "127.0.0.1:0" }',
    'cache: { maxBytes: 64MiB }',
    'http:',
    `  - { name: soak-http, listen: "127.0.0.1:0", upstream: "http://127.0.0.1:${origin.address().port}" }`,
    'postgres:',
    `  - { name: soak-pg, listen: "127.0.0.1:0", upstream: "postgres://${PG.host}:${PG.port}?sslmode=disable", defaultTtl: 1h }`,
    'invalidation:',
    `  - { type: redis, url: "redis://${proxy.host}:${proxy.port}", channel: ${channel}, onGap: ${ON_GAP} }`,
    '',
  ].join('\n'),
);
const child = spawn(process.execPath, ['dist/cli.js', 'start', '-c', config], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
/** Log lines by level and message, to show what sidecache said about the outages. */
const logCounts = new Map();
let logBytes = 0;
const ports = await new Promise((resolve, reject) => {
  let out = '';
  let pending = '';
  const found = {};
  child.stderr.on('data', (chunk) => {
    logBytes += chunk.length;
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop();
    for (const line of lines) {
      if (found.admin === undefined) out += `${line}\n`;
      const entry = (() => {
        try {
          return JSON.parse(line);
        } catch {
          return { level: 'raw', msg: line.slice(0, 80) };
        }
      })();
      const label = `${entry.level} ${entry.msg}`;
      logCounts.set(label, (logCounts.get(label) ?? 0) + 1);
      const port = Number(/:(\d+)$/.exec(entry.address ?? '')?.[1]);
      if (entry.msg === 'http listener ready') found.http = port;
      if (entry.msg === 'postgres listener ready') found.pg = port;
      if (entry.msg === 'admin listening') found.admin = port;
      if (found.http && found.pg && found.admin) resolve({ ...found });
    }
  });
  child.once('exit', (code) => reject(new Error(`sidecache exited ${code}: ${out}`)));
});
const adminUrl = `http://127.0.0.1:${ports.admin}`;
async function metrics() {
  const res = await fetch(`${adminUrl}/metrics`);
  return parsePromText(await res.text());
}

// --- bookkeeping ---
const history = { http: new VersionHistory(GRACE_MS), pg: new VersionHistory(GRACE_MS) };
const reads = { http: 0, pg: 0 };
const errors = { http: 0, pg: 0 };
const lastError = {};
/** Stale reads, judged at the end against the down windows (which may close after the read). */
const staleReads = [];
const down = new DownWindows();
const cuts = [];
const writes = { http: 0, pg: 0, unheard: 0 };
let running = true;
const deadline = t0 + MINUTES * 60_000;

function judge(protocol, key, version, startedAt) {
  reads[protocol]++;
  const required = history[protocol].required(key, startedAt);
  if (version < required) staleReads.push({ protocol, key, version, required, startedAt });
}

// --- the bus monitor: sidecache_bus_connected every 100 ms ---
/** The cut in progress: its window closes at the first sample reading 1 after the refusing ended and a 0 was seen. */
let cut;
let lastUpAt = Date.now();
let busPolls = 0;
/** The least heap the polls saw since the last resource sample. */
let heapFloor = Infinity;
async function monitorBus() {
  while (running) {
    const at = Date.now();
    try {
      const m = await metrics();
      const connected = sumOf(m, 'sidecache_bus_connected');
      heapFloor = Math.min(heapFloor, valueOf(m, 'nodejs_heap_size_used_bytes') ?? Infinity);
      busPolls++;
      if (connected === 0) {
        down.down(cut?.at ?? lastUpAt);
        if (cut) cut.seenDown ??= at;
      } else if (cut === undefined || (cut.refusingEnded && cut.seenDown !== undefined)) {
        if (cut) cut.upAt = at;
        cut = undefined;
        down.up(at);
        lastUpAt = at;
      }
    } catch (err) {
      lastError.monitor = err.message;
    }
    await sleep(BUS_POLL_MS);
  }
}

// --- killing the bus every CUT_EVERY_S ---
async function cutter() {
  for (let next = t0 + CUT_EVERY_S * 1000; next < deadline - 5_000; next += CUT_EVERY_S * 1000) {
    await sleep(next - Date.now());
    if (!running) return;
    const at = Date.now();
    cut = { at, seenDown: undefined, refusingEnded: false, upAt: undefined };
    cuts.push(cut);
    down.down(at);
    proxy.refuse(true);
    proxy.cut();
    await sleep(CUT_FOR_S * 1000);
    proxy.refuse(false);
    cut.refusingEnded = true;
  }
}

// --- the writer: one HTTP key and one row bumped, each invalidation published on Redis ---
async function writer() {
  while (running) {
    const started = Date.now();
    const hk = Math.floor(Math.random() * KEYS);
    const hv = ++httpVersions[hk];
    const hHeard = await publisher.publish(channel, JSON.stringify({ tags: [`k${hk}`] }));
    history.http.published(hk, hv, Date.now());
    const pk = Math.floor(Math.random() * KEYS);
    const { rows } = await direct.query(`UPDATE ${table} SET version = version + 1 WHERE id = $1 RETURNING version`, [pk]);
    const pHeard = await publisher.publish(channel, JSON.stringify({ tables: [table] }));
    history.pg.published(pk, rows[0].version, Date.now());
    writes.http++;
    writes.pg++;
    writes.unheard += (hHeard === 0) + (pHeard === 0);
    await sleep(Math.max(0, WRITE_EVERY_MS - (Date.now() - started)));
  }
}

// --- the readers ---
async function httpReader() {
  const pool = new Pool(`http://127.0.0.1:${ports.http}`, { connections: 1 });
  while (running) {
    const key = Math.floor(Math.random() * KEYS);
    const startedAt = Date.now();
    try {
      const res = await pool.request({ method: 'GET', path: `/k/${key}` });
      const text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
      judge('http', key, JSON.parse(text).version, startedAt);
      await sleep(READ_PAUSE_MS);
    } catch (err) {
      errors.http++;
      lastError.http = err.message;
      await sleep(100);
    }
  }
  await pool.close();
}

async function pgReader() {
  let client;
  while (running) {
    try {
      if (!client) {
        client = new pg.Client({ ...PG, host: '127.0.0.1', port: ports.pg });
        client.on('error', () => undefined);
        await client.connect();
      }
      const key = Math.floor(Math.random() * KEYS);
      const startedAt = Date.now();
      const { rows } = await client.query(`SELECT version FROM ${table} WHERE id = $1`, [key]);
      judge('pg', key, rows[0].version, startedAt);
      await sleep(READ_PAUSE_MS);
    } catch (err) {
      errors.pg++;
      lastError.pg = err.message;
      await client?.end().catch(() => undefined);
      client = undefined;
      await sleep(100);
    }
  }
  await client?.end().catch(() => undefined);
}

// --- resource samples every 10 s ---
const samples = [];
async function sampler() {
  for (let next = t0; next < deadline; next += SAMPLE_EVERY_MS) {
    await sleep(Math.max(0, next - Date.now()));
    if (!running) return;
    try {
      const m = await metrics();
      const sample = {
        at: Date.now(),
        fds: readdirSync(`/proc/${child.pid}/fd`).length,
        openFds: valueOf(m, 'process_open_fds'),
        heap: valueOf(m, 'nodejs_heap_size_used_bytes'),
        heapFloor: Math.min(heapFloor, valueOf(m, 'nodejs_heap_size_used_bytes')),
        rss: valueOf(m, 'process_resident_memory_bytes'),
        clients: sumOf(m, 'sidecache_client_connections'),
        upstreams: sumOf(m, 'sidecache_upstream_connections'),
        bus: sumOf(m, 'sidecache_bus_connected'),
        busConns: proxy.open,
        gaps: sumOf(m, 'sidecache_bus_gaps_total'),
        entries: valueOf(m, 'sidecache_cache_entries'),
        pgBypass: sumOf(m, 'sidecache_requests_total', { protocol: 'postgres', result: 'bypass' }),
      };
      heapFloor = Infinity;
      samples.push(sample);
      console.log(
        `${elapsed(sample.at)} s  fds ${sample.fds}  heap ${mib(sample.heap)} (floor ${mib(sample.heapFloor)})  rss ${mib(sample.rss)}  client conns ${sample.clients}  upstream conns ${sample.upstreams}  ` +
          `bus ${sample.bus} (${sample.busConns} conn)  gaps ${sample.gaps}  entries ${sample.entries}  pg bypass ${sample.pgBypass}  reads http ${reads.http} pg ${reads.pg}  stale ${staleReads.length}`,
      );
    } catch (err) {
      lastError.sampler = err.message;
    }
  }
}

console.log(
  `soak: ${MINUTES} min, bus cut every ${CUT_EVERY_S} s for ${CUT_FOR_S} s, ${READERS} readers (pause ${READ_PAUSE_MS} ms), ${KEYS} keys per protocol, grace ${GRACE_MS} ms, onGap ${ON_GAP}, sidecache pid ${child.pid}`,
);
const before = await metrics();
const tasks = [monitorBus(), writer(), cutter(), sampler()];
for (let i = 0; i < READERS; i++) tasks.push(i % 2 === 0 ? httpReader() : pgReader());
await sleep(deadline - Date.now());
running = false;
await Promise.allSettled(tasks);
down.finish(Date.now());
const after = await metrics();

// --- the report ---
const inside = staleReads.filter((r) => down.contains(r.startedAt));
const outside = staleReads.filter((r) => !down.contains(r.startedAt));
const requests = (protocol, result) =>
  sumOf(after, 'sidecache_requests_total', { protocol, result }) - sumOf(before, 'sidecache_requests_total', { protocol, result });
const results = (protocol) =>
  ['hit', 'miss', 'stale', 'bypass', 'error']
    .map((r) => `${r} ${requests(protocol, r)}`)
    .filter((s) => !s.endsWith(' 0'))
    .join(', ');
console.log('\n=== soak report ===');
console.log(`duration            ${((Date.now() - t0) / 60_000).toFixed(1)} min`);
for (const [p, label] of [
  ['http', 'http'],
  ['pg', 'postgres'],
])
  console.log(`reads ${p.padEnd(14)}${reads[p]} (errors ${errors[p]}; sidecache counted ${results(label)})`);
console.log(`writes              ${writes.http} http + ${writes.pg} pg; ${writes.unheard} publishes reached no subscriber (bus down)`);
console.log(`stale outside down  ${outside.length}`);
for (const r of outside.slice(0, 10))
  console.log(`  ${r.protocol} key ${r.key} got v${r.version}, v${r.required} was published > ${GRACE_MS} ms before the read (at ${elapsed(r.startedAt)} s)`);
console.log(`stale inside down   ${inside.length}`);
console.log(
  `down windows        ${down.windows.length}, ${(down.totalMs / 1000).toFixed(1)} s in all (${cuts.length} cuts of ${CUT_FOR_S} s; bus polled ${busPolls} times)`,
);
for (const w of down.windows) console.log(`  ${elapsed(w.from)} s .. ${elapsed(w.to)} s  (${((w.to - w.from) / 1000).toFixed(1)} s)`);
const unnoticed = cuts.filter((c) => c.seenDown === undefined).length;
console.log(`cuts not seen as 0  ${unnoticed}`);
console.log(`bus gaps            ${sumOf(after, 'sidecache_bus_gaps_total')} (resubscriptions after a gap; each flushed the cache unless onGap is keep)`);
console.log(`bus connections     at most ${proxy.maxOpen} open at once through the proxy; ${proxy.accepted} accepted, ${proxy.refused} refused while cut`);
const warm = samples.filter((s) => s.at - t0 >= WARMUP_MS);
let flat = true;
function trend(name, pick, unit = (v) => String(v)) {
  if (warm.length < 2) return console.log(`${name.padEnd(22)}not enough samples after warm-up`);
  const values = warm.map(pick);
  const first = values[0];
  const last = values[values.length - 1];
  const ok = Math.abs(last - first) <= FLAT_WITHIN * first;
  flat &&= ok;
  console.log(
    `${name.padEnd(22)}first ${unit(first)}  last ${unit(last)}  max ${unit(Math.max(...values))}  min ${unit(Math.min(...values))}  ${ok ? 'flat' : 'NOT FLAT'} (last within ${FLAT_WITHIN * 100}% of first after ${WARMUP_MS / 1000} s)`,
  );
}
trend('sidecache fds', (s) => s.fds);
trend('sidecache heap floor', (s) => s.heapFloor, mib);
console.log(
  `heap (raw samples)  first ${mib(warm[0]?.heap ?? 0)}  last ${mib(warm.at(-1)?.heap ?? 0)}  max ${mib(Math.max(0, ...warm.map((s) => s.heap)))}  (not judged: a reading lands anywhere on the GC sawtooth)`,
);
console.log(`rss                 first ${mib(warm[0]?.rss ?? 0)}  last ${mib(warm.at(-1)?.rss ?? 0)}  max ${mib(Math.max(0, ...warm.map((s) => s.rss)))}`);
console.log(`client conns        ${[...new Set(samples.map((s) => s.clients))].join(', ')} (distinct values sampled)`);
console.log(`upstream conns      ${[...new Set(samples.map((s) => s.upstreams))].join(', ')} (distinct values sampled)`);
console.log(`sidecache log       ${(logBytes / 1024).toFixed(1)} KiB`);
for (const [label, n] of [...logCounts].sort((a, b) => b[1] - a[1])) console.log(`  ${String(n).padStart(5)}  ${label}`);
if (Object.keys(lastError).length > 0) console.log(`last errors         ${JSON.stringify(lastError)}`);
const pass = outside.length === 0 && flat && unnoticed === 0;
console.log(`verdict             ${pass ? 'PASS' : 'FAIL'}`);

child.kill('SIGTERM');
await once(child, 'exit');
publisher.disconnect();
await proxy.close();
await direct.query(`DROP TABLE IF EXISTS ${table}`);
await direct.end();
origin.close();
rmSync(dir, { recursive: true, force: true });
process.exitCode = pass ? 0 : 1;
