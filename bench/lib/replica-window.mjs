// Two replicas, A and B (real `dist/cli.js start` processes), on one bus: a client writes through
// A and then reads through B. Issue 17 point 1: A answers the write only once its invalidation is
// published, so B can serve the old answer only until it has applied the message. This measures
// that window: from A's response to the first read through B that answers fresh.
//
// How: per write, B is made to hold the key (a second read must be a hit: `Cache-Status: …hit` for
// HTTP, B's `sidecache_requests_total{result="hit"}` rising for PostgreSQL; otherwise the write is
// not measured), the write goes through A (HTTP POST to A's listener in front of an origin here, or
// an UPDATE through A's PostgreSQL listener), and reads through B follow back to back until one
// answers the new version. The window is the start of that read less the moment A's response
// arrived: 0.0x ms when B had already applied the message when the first read reached it, else the
// time B took, to within one read through B (about 0.2–0.5 ms here). `first read stale` counts the
// writes after which a client reading through B at once would still have seen the old data.
import http from 'node:http';
import pg from 'pg';
import { Pool } from 'undici';
import { parsePromText, sumOf } from './prom-text.mjs';
import { startReplica } from './replica.mjs';

const KEYS = 50;
const GIVE_UP_MS = 2_000;

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];

function summarise(windows, writeTimes, firstStale, skipped, lost) {
  const w = [...windows].sort((a, b) => a - b);
  const t = [...writeTimes].sort((a, b) => a - b);
  return { n: w.length, p50: percentile(w, 0.5), p99: percentile(w, 0.99), max: w.at(-1), writeP50: percentile(t, 0.5), firstStale, skipped, lost };
}

/**
 * Runs `writes` measured writes of each kind in `kinds` ('http', 'pg') with A and B on the bus that
 * `busYaml` describes (one `invalidation[]` entry). `upstream` is the PostgreSQL both replicas sit in
 * front of; `table` exists there with rows (id, v) for ids 0..KEYS-1 (see `createTable`).
 */
export async function replicaWindows({ busYaml, upstream, table, writes, kinds }) {
  const versions = new Array(KEYS).fill(1);
  const origin = http.createServer((req, res) => {
    const key = Number(/^\/k\/(\d+)$/.exec(req.url)?.[1]);
    if (!(key >= 0 && key < KEYS)) return void res.writeHead(404).end();
    if (req.method === 'POST') {
      versions[key]++;
      return void req.resume().on('end', () => res.writeHead(204).end());
    }
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=300' });
    res.end(JSON.stringify({ v: versions[key] }));
  });
  await new Promise((resolve) => origin.listen(0, '127.0.0.1', resolve));
  const config = [
    'admin: { listen: "127.0.0.1:0" }',
    'http:',
    `  - { name: api, listen: "127.0.0.1:0", upstream: "http://127.0.0.1:${origin.address().port}" }`,
    'postgres:',
    `  - { name: db, listen: "127.0.0.1:0", upstream: "postgres://${upstream.host}:${upstream.port}?sslmode=disable", defaultTtl: 1h }`,
    'invalidation:',
    `  - ${busYaml}`,
    '',
  ].join('\n');
  // One after the other: a postgres-wal bus with createPublication creates the publication once.
  const a = await startReplica(config);
  const b = await startReplica(config);
  const results = {};
  try {
    if (kinds.includes('http')) results.http = await httpWindows(a, b, versions, writes);
    if (kinds.includes('pg')) results.pg = await pgWindows(a, b, upstream, table, writes);
  } finally {
    await Promise.all([a.stop(), b.stop()]);
    origin.close();
  }
  return results;
}

/** Creates `table` (id, v) with KEYS rows on the server `client` is connected to. */
export async function createTable(client, table) {
  await client.query(`DROP TABLE IF EXISTS ${table}; CREATE TABLE ${table} (id int PRIMARY KEY, v int NOT NULL);
    INSERT INTO ${table} SELECT g, 1 FROM generate_series(0, ${KEYS - 1}) g`);
}

async function httpWindows(a, b, versions, writes) {
  const poolA = new Pool(a.http, { connections: 1 });
  const poolB = new Pool(b.http, { connections: 1 });
  const read = async (key) => {
    const res = await poolB.request({ method: 'GET', path: `/k/${key}` });
    const body = await res.body.json();
    return { v: body.v, status: String(res.headers['cache-status'] ?? '') };
  };
  const windows = [];
  const writeTimes = [];
  let firstStale = 0;
  let skipped = 0;
  let lost = 0;
  try {
    for (let i = 0; i < writes + 20; i++) {
      const key = i % KEYS;
      await read(key);
      const held = await read(key);
      if (!/hit/.test(held.status)) {
        skipped++;
        continue;
      }
      const sent = performance.now();
      const res = await poolA.request({ method: 'POST', path: `/k/${key}`, body: 'x' });
      await res.body.dump();
      const answered = performance.now();
      const outcome = await firstFresh(() => read(key).then((r) => r.v), versions[key], answered);
      if (i < 20) continue;
      if (outcome === undefined) lost++;
      else {
        windows.push(outcome.window);
        writeTimes.push(answered - sent);
        if (outcome.staleReads > 0) firstStale++;
      }
    }
  } finally {
    await Promise.all([poolA.close(), poolB.close()]);
  }
  return summarise(windows, writeTimes, firstStale, skipped, lost);
}

async function pgWindows(a, b, upstream, table, writes) {
  const ca = new pg.Client({ ...upstream, host: '127.0.0.1', port: a.pgPort });
  const cb = new pg.Client({ ...upstream, host: '127.0.0.1', port: b.pgPort });
  await Promise.all([ca.connect(), cb.connect()]);
  const hits = async () => sumOf(parsePromText(await b.metrics()), 'sidecache_requests_total', { protocol: 'postgres', result: 'hit' });
  const read = async (key) => (await cb.query(`SELECT v FROM ${table} WHERE id = $1`, [key])).rows[0].v;
  const windows = [];
  const writeTimes = [];
  let firstStale = 0;
  let skipped = 0;
  let lost = 0;
  try {
    for (let i = 0; i < writes + 20; i++) {
      const key = i % KEYS;
      await read(key);
      const before = await hits();
      await read(key);
      if ((await hits()) <= before) {
        skipped++;
        continue;
      }
      const sent = performance.now();
      const { rows } = await ca.query(`UPDATE ${table} SET v = v + 1 WHERE id = $1 RETURNING v`, [key]);
      const answered = performance.now();
      const outcome = await firstFresh(() => read(key), rows[0].v, answered);
      if (i < 20) continue;
      if (outcome === undefined) lost++;
      else {
        windows.push(outcome.window);
        writeTimes.push(answered - sent);
        if (outcome.staleReads > 0) firstStale++;
      }
    }
  } finally {
    await Promise.all([ca.end(), cb.end()]);
  }
  return summarise(windows, writeTimes, firstStale, skipped, lost);
}

/** Reads until `read()` answers at least `version`; the window from `answered` to that read's start, or undefined after GIVE_UP_MS. */
async function firstFresh(read, version, answered) {
  let staleReads = 0;
  for (;;) {
    const started = performance.now();
    if (started - answered > GIVE_UP_MS) return undefined;
    if ((await read()) >= version) return { window: started - answered, staleReads };
    staleReads++;
  }
}

export const fmtWindow = (r) =>
  r.n === 0
    ? `no write measured (${r.skipped} not held by B; ${r.lost} NEVER FRESH within ${GIVE_UP_MS} ms)`
    : `A's response → B fresh p50 ${r.p50.toFixed(3)} ms  p99 ${r.p99.toFixed(3)} ms  max ${r.max.toFixed(3)} ms  (${r.n} writes; first read through B stale after ${r.firstStale}; write through A p50 ${r.writeP50.toFixed(3)} ms` +
      `${r.skipped > 0 ? `; ${r.skipped} not held by B, not measured` : ''}${r.lost > 0 ? `; ${r.lost} NEVER FRESH within ${GIVE_UP_MS} ms` : ''})`;
