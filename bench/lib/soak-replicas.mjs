// The soak's two-replica mode (SOAK_REPLICAS=2, see bench/soak.mjs): the stale-read hunt of issue 17.
//
// Replicas A and B (real `dist/cli.js start` processes, one config) sit in front of an origin here
// (a JSON document per key with its version, max-age=300) and of the machine's PostgreSQL (a table
// of id, version), on one bus reached through a TCP proxy here (SOAK_BUS: redis, redis-stream or
// postgres NOTIFY). A writer goes through A only — an HTTP POST (the origin bumps the key's version;
// A invalidates the URL) and an UPDATE through A's PostgreSQL listener — so every invalidation B
// gets is one A decided and published (`publish: true`). Readers read random keys through both A
// and B, both protocols. In the middle of the run the proxy resets the bus connections of both and
// refuses new ones for SOAK_CUT_FOR_S: each replica serves by `whileDown: bypass` meanwhile.
//
// A read that began at t and returned version v is judged against the writes whose response came
// back from A before t: stale when a newer version's write was answered more than SOAK_GRACE_MS
// before t (B had that long to apply the message; bench/lib/replica-window.mjs measures the real
// window). Reads that were stale but within the grace are counted as "in the window"; reads that
// began while the bus was down (from the cut to the first sample where both replicas read
// sidecache_bus_connected 1 again) are counted apart. Exit 1 when a read was stale outside both.
// SOAK_PUBLISH_A=false (A publishes nothing) is the control: B must then serve stale reads.
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { Pool } from 'undici';
import { parsePromText, sumOf } from './prom-text.mjs';
import { startReplica } from './replica.mjs';
import { DownWindows, VersionHistory } from './staleness.mjs';
import { startTcpProxy } from './tcp-proxy.mjs';

const SECONDS = Number(process.env.SOAK_SECONDS ?? 60 * Number(process.env.SOAK_MINUTES ?? 1));
const BUS = process.env.SOAK_BUS ?? 'redis';
const CUT_FOR_S = Number(process.env.SOAK_CUT_FOR_S ?? 5);
const GRACE_MS = Number(process.env.SOAK_GRACE_MS ?? 500);
const PUBLISH_A = process.env.SOAK_PUBLISH_A !== 'false';
const KEYS = Number(process.env.SOAK_KEYS ?? 100);
const READERS_PER_REPLICA = Number(process.env.SOAK_READERS ?? 4);
const READ_PAUSE_MS = Number(process.env.SOAK_READ_PAUSE_MS ?? 2);
const WRITE_EVERY_MS = 100;
const BUS_POLL_MS = 100;
const REDIS_URL = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const PG = {
  host: process.env.PGHOST ?? '127.0.0.1',
  port: Number(process.env.PGPORT ?? 5432),
  user: process.env.PGUSER ?? 'postgres',
  database: process.env.PGDATABASE ?? 'test',
};
const name = `sc_soak2_${process.pid}`;
const t0 = Date.now();
const elapsed = (t = Date.now()) => ((t - t0) / 1000).toFixed(1).padStart(6);

// --- the origin, the table, the bus's way to its server ---
const versions = new Array(KEYS).fill(1);
const origin = http.createServer((req, res) => {
  const key = Number(/^\/k\/(\d+)$/.exec(req.url)?.[1]);
  if (!(key >= 0 && key < KEYS)) return void res.writeHead(404).end();
  if (req.method === 'POST') {
    versions[key]++;
    return void req.resume().on('end', () => res.writeHead(204).end());
  }
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=300' });
  res.end(JSON.stringify({ key, version: versions[key] }));
});
await new Promise((resolve) => origin.listen(0, '127.0.0.1', resolve));
const direct = new pg.Client(PG);
await direct.connect();
await direct.query(`DROP TABLE IF EXISTS ${name}; CREATE TABLE ${name} (id int PRIMARY KEY, version int NOT NULL);
  INSERT INTO ${name} SELECT g, 1 FROM generate_series(0, ${KEYS - 1}) g`);
const target = BUS === 'postgres' ? { host: PG.host, port: PG.port } : { host: REDIS_URL.hostname, port: Number(REDIS_URL.port || 6379) };
const proxy = await startTcpProxy(target);
const via = `${proxy.host}:${proxy.port}`;
const busYaml = {
  redis: `{ type: redis, url: "redis://${via}", channel: ${name}`,
  'redis-stream': `{ type: redis-stream, url: "redis://${via}", stream: ${name}`,
  postgres: `{ type: postgres, url: "postgres://${PG.user}@${via}/${PG.database}", channel: ${name}`,
}[BUS];
if (busYaml === undefined) throw new Error(`SOAK_BUS must be redis, redis-stream or postgres, not ${BUS}`);
const config = (publish) =>
  [
    'admin: { listen: "127.0.0.1:0" }',
    'cache: { maxBytes: 64MiB }',
    'http:',
    `  - { name: soak-http, listen: "127.0.0.1:0", upstream: "http://127.0.0.1:${origin.address().port}" }`,
    'postgres:',
    `  - { name: soak-pg, listen: "127.0.0.1:0", upstream: "postgres://${PG.host}:${PG.port}?sslmode=disable", defaultTtl: 1h }`,
    'invalidation:',
    `  - ${busYaml}, heartbeat: 1s, whileDown: bypass, publish: ${publish} }`,
    '',
  ].join('\n');
const a = await startReplica(config(PUBLISH_A));
const b = await startReplica(config(true));
const replicas = { A: a, B: b };

// --- bookkeeping ---
const history = { http: new VersionHistory(GRACE_MS), pg: new VersionHistory(GRACE_MS) };
/** Versions answered by A, judged with no grace: a read after this must not be older. */
const answered = { http: new VersionHistory(0), pg: new VersionHistory(0) };
const reads = {};
const errors = {};
const lastError = {};
const stale = [];
const down = new DownWindows();
const writes = { http: 0, pg: 0 };
let running = true;
const deadline = t0 + SECONDS * 1000;

function judge(replica, protocol, key, version, startedAt) {
  const label = `${replica} ${protocol}`;
  reads[label] = (reads[label] ?? 0) + 1;
  if (version < answered[protocol].required(key, startedAt))
    stale.push({
      replica,
      protocol,
      key,
      version,
      required: answered[protocol].required(key, startedAt),
      graced: history[protocol].required(key, startedAt),
      startedAt,
    });
}

// --- the bus monitor: sidecache_bus_connected of both replicas every 100 ms ---
let cut;
let lastUpAt = Date.now();
/** When each replica was first seen with its bus down, and first seen up again after that. */
const seen = { A: {}, B: {} };
async function monitorBus() {
  while (running) {
    const at = Date.now();
    try {
      const connected = await Promise.all([a, b].map(async (r) => sumOf(parsePromText(await r.metrics()), 'sidecache_bus_connected')));
      for (const [i, who] of ['A', 'B'].entries()) {
        if (connected[i] === 0) seen[who].down ??= at;
        else if (seen[who].down !== undefined) seen[who].up ??= at;
      }
      if (connected.includes(0)) {
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

/** One outage, in the middle of the run. */
const cuts = [];
async function cutter() {
  await sleep(Math.max(0, t0 + (SECONDS * 1000) / 2 - Date.now()));
  if (!running) return;
  cut = { at: Date.now(), seenDown: undefined, refusingEnded: false, upAt: undefined };
  cuts.push(cut);
  down.down(cut.at);
  proxy.refuse(true);
  proxy.cut();
  await sleep(CUT_FOR_S * 1000);
  proxy.refuse(false);
  cut.refusingEnded = true;
}

// --- the writer, through A only ---
async function writer() {
  const pool = new Pool(a.http, { connections: 1 });
  const client = new pg.Client({ ...PG, host: '127.0.0.1', port: a.pgPort });
  await client.connect();
  while (running) {
    const started = Date.now();
    try {
      const hk = Math.floor(Math.random() * KEYS);
      const res = await pool.request({ method: 'POST', path: `/k/${hk}`, body: 'x' });
      await res.body.dump();
      // The origin bumped the version before it answered; A answered once its message was out.
      history.http.published(hk, versions[hk], Date.now());
      answered.http.published(hk, versions[hk], Date.now());
      writes.http++;
      const pk = Math.floor(Math.random() * KEYS);
      const { rows } = await client.query(`UPDATE ${name} SET version = version + 1 WHERE id = $1 RETURNING version`, [pk]);
      history.pg.published(pk, rows[0].version, Date.now());
      answered.pg.published(pk, rows[0].version, Date.now());
      writes.pg++;
    } catch (err) {
      lastError.writer = err.message;
    }
    await sleep(Math.max(0, WRITE_EVERY_MS - (Date.now() - started)));
  }
  await pool.close();
  await client.end();
}

// --- the readers ---
async function httpReader(replica) {
  const pool = new Pool(replicas[replica].http, { connections: 1 });
  while (running) {
    const key = Math.floor(Math.random() * KEYS);
    const startedAt = Date.now();
    try {
      const res = await pool.request({ method: 'GET', path: `/k/${key}` });
      const text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
      judge(replica, 'http', key, JSON.parse(text).version, startedAt);
      await sleep(READ_PAUSE_MS);
    } catch (err) {
      errors[`${replica} http`] = (errors[`${replica} http`] ?? 0) + 1;
      lastError[`${replica} http`] = err.message;
      await sleep(100);
    }
  }
  await pool.close();
}

async function pgReader(replica) {
  let client;
  while (running) {
    try {
      if (!client) {
        client = new pg.Client({ ...PG, host: '127.0.0.1', port: replicas[replica].pgPort });
        client.on('error', () => undefined);
        await client.connect();
      }
      const key = Math.floor(Math.random() * KEYS);
      const startedAt = Date.now();
      const { rows } = await client.query(`SELECT version FROM ${name} WHERE id = $1`, [key]);
      judge(replica, 'pg', key, rows[0].version, startedAt);
      await sleep(READ_PAUSE_MS);
    } catch (err) {
      errors[`${replica} pg`] = (errors[`${replica} pg`] ?? 0) + 1;
      lastError[`${replica} pg`] = err.message;
      await client?.end().catch(() => undefined);
      client = undefined;
      await sleep(100);
    }
  }
  await client?.end().catch(() => undefined);
}

console.log(
  `soak, two replicas: ${SECONDS} s, bus ${BUS} (through a proxy), one outage of ${CUT_FOR_S} s in the middle, whileDown bypass, A publish ${PUBLISH_A}, ` +
    `${READERS_PER_REPLICA} readers per replica, ${KEYS} keys per protocol, writes through A every ${WRITE_EVERY_MS} ms, grace ${GRACE_MS} ms`,
);
const before = { A: parsePromText(await a.metrics()), B: parsePromText(await b.metrics()) };
const tasks = [monitorBus(), writer(), cutter()];
for (const replica of ['A', 'B']) for (let i = 0; i < READERS_PER_REPLICA; i++) tasks.push(i % 2 === 0 ? httpReader(replica) : pgReader(replica));
await sleep(deadline - Date.now());
running = false;
await Promise.allSettled(tasks);
down.finish(Date.now());
const after = { A: parsePromText(await a.metrics()), B: parsePromText(await b.metrics()) };

// --- the report ---
const inDown = stale.filter((r) => down.contains(r.startedAt));
const inWindow = stale.filter((r) => !down.contains(r.startedAt) && r.version >= r.graced);
const outside = stale.filter((r) => !down.contains(r.startedAt) && r.version < r.graced);
const delta = (replica, metric, where) => sumOf(after[replica], metric, where) - sumOf(before[replica], metric, where);
console.log('\n=== soak report (two replicas) ===');
console.log(`duration            ${((Date.now() - t0) / 1000).toFixed(1)} s`);
for (const [label, n] of Object.entries(reads).sort()) {
  const [replica, protocol] = label.split(' ');
  const p = protocol === 'http' ? 'http' : 'postgres';
  const results = ['hit', 'miss', 'bypass'].map((r) => `${r} ${delta(replica, 'sidecache_requests_total', { protocol: p, result: r })}`).join(', ');
  console.log(`reads ${label.padEnd(14)}${n} (errors ${errors[label] ?? 0}; ${replica} counted, writes included: ${results})`);
}
console.log(`writes through A    ${writes.http} http + ${writes.pg} pg`);
console.log(
  `A published         sent ${delta('A', 'sidecache_bus_publishes_total', { result: 'sent' })}, failed (kept in the outbox) ${delta('A', 'sidecache_bus_publishes_total', { result: 'failed' })}`,
);
console.log(
  `B applied           ${delta('B', 'sidecache_invalidations_total', {})} messages; gaps A ${delta('A', 'sidecache_bus_gaps_total', {})} B ${delta('B', 'sidecache_bus_gaps_total', {})}`,
);
console.log(`stale outside down  ${outside.length}   (older than a write A had answered more than ${GRACE_MS} ms before the read: must be 0)`);
for (const r of outside.slice(0, 10))
  console.log(
    `  ${r.replica} ${r.protocol} key ${r.key} got v${r.version}, v${r.graced} was answered > ${GRACE_MS} ms before the read (at ${elapsed(r.startedAt)} s)`,
  );
console.log(`stale in the window ${inWindow.length}   (older than a write A had answered less than ${GRACE_MS} ms before: B had not applied it yet)`);
for (const who of ['A', 'B']) {
  const mine = inWindow.filter((r) => r.replica === who);
  if (mine.length > 0) console.log(`  through ${who}: ${mine.length}`);
}
console.log(`stale inside down   ${inDown.length}   (reads that began during the outage, answered under whileDown bypass)`);
for (const r of inDown.slice(0, 10))
  console.log(`  ${r.replica} ${r.protocol} key ${r.key} got v${r.version}, v${r.required} was answered before the read (at ${elapsed(r.startedAt)} s)`);
for (const who of ['A', 'B'])
  console.log(
    `${who}'s bus             seen down at ${seen[who].down ? elapsed(seen[who].down) : '-'} s, up again at ${seen[who].up ? elapsed(seen[who].up) : '-'} s (polled every ${BUS_POLL_MS} ms; the cut at ${cuts[0] ? elapsed(cuts[0].at) : '-'} s)`,
  );
for (const w of down.windows) console.log(`down window         ${elapsed(w.from)} s .. ${elapsed(w.to)} s  (${((w.to - w.from) / 1000).toFixed(1)} s)`);
console.log(
  `bypassed            A ${delta('A', 'sidecache_requests_total', { result: 'bypass' })}, B ${delta('B', 'sidecache_requests_total', { result: 'bypass' })} requests (whileDown bypass while the bus was down; HTTP POSTs through A count too)`,
);
const unnoticed = cuts.filter((c) => c.seenDown === undefined).length;
console.log(`outage not seen     ${unnoticed}`);
for (const who of ['A', 'B'])
  for (const [label, n] of [...replicas[who].logCounts].filter(([l]) => !l.startsWith('info')).sort((x, y) => y[1] - x[1]))
    console.log(`  ${who} log ${String(n).padStart(5)}  ${label}`);
if (Object.keys(lastError).length > 0) console.log(`last errors         ${JSON.stringify(lastError)}`);
const pass = outside.length === 0 && unnoticed === 0;
console.log(`verdict             ${pass ? 'PASS' : 'FAIL'}${PUBLISH_A ? '' : ' (control: A publishes nothing, so FAIL is expected)'}`);

await Promise.all([a.stop(), b.stop()]);
await proxy.close();
await direct.query(`DROP TABLE IF EXISTS ${name}`);
await direct.end();
origin.close();
process.exitCode = pass ? 0 : 1;
