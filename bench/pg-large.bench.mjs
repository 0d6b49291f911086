// Large messages through the PostgreSQL listener, sidecache against PostgreSQL direct in the same
// run, with the `pg` client (extended protocol):
//   bind          a bytea parameter of the size in one Bind (a new value each run: always a miss),
//                 held until Sync as its answer may be stored (cache.maxEntryBytes raised above it);
//   bind-pass     the same through a second sidecache whose maxEntryBytes (8MiB) the Bind exceeds,
//                 so no answer to it can be stored and it goes upstream as it arrives;
//   result-store  a text result of the size, stored (cache.maxEntryBytes raised above it);
//   result-hit    the same result again, answered from the cache;
//   result-pass   the same result through a second sidecache whose maxEntryBytes (8MiB) it
//                 exceeds, so it is forwarded as it arrives and not stored.
// Then memory per entry: bench/lib/pg-entry-memory.mjs, in a child with --expose-gc.
// Prints seconds for both and the ratio sidecache/direct per run, then the median of the runs.
// BENCH_LARGE_MIB (default "16,64") and BENCH_LARGE_RUNS (default 3) change the sizes and runs.
// Needs PostgreSQL at PGHOST/PGPORT (default 127.0.0.1:5432), database PGDATABASE (test).
import { execFile } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import pg from 'pg';
import { PG, scratch, startSidecache } from './lib/pg.mjs';

const SIZES_MIB = (process.env.BENCH_LARGE_MIB ?? '16,64').split(',').map(Number);
const RUNS = Number(process.env.BENCH_LARGE_RUNS ?? 3);
const MiB = 1024 * 1024;

const dir = scratch();
const stored = await startSidecache(dir, { name: 'stored', cache: '{ maxBytes: 1GiB, maxEntryBytes: 256MiB }' });
const passing = await startSidecache(dir, { name: 'passing', cache: '{ maxBytes: 1GiB, maxEntryBytes: 8MiB }' });

async function client(port) {
  const c = new pg.Client({ ...PG, port, host: port === PG.port ? PG.host : '127.0.0.1' });
  await c.connect();
  return c;
}
const direct = await client(PG.port);
const viaStored = await client(stored.port);
const viaPassing = await client(passing.port);

const RESULT_SQL = "SELECT $2::int AS run, repeat('x', $1::int) AS v";
const BIND_SQL = 'SELECT length($1::bytea) AS n';

/** Seconds one query takes, after checking its answer. */
async function timed(c, text, values, check) {
  const t0 = performance.now();
  const { rows } = await c.query({ text, values });
  const seconds = (performance.now() - t0) / 1000;
  check(rows[0]);
  return seconds;
}

function expectEqual(what, got, want) {
  if (got !== want) throw new Error(`${what}: expected ${want}, got ${got}`);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** sidecache_requests_total of a Postgres listener, by result. */
async function counts(instance) {
  const text = await (await fetch(`http://127.0.0.1:${instance.admin}/metrics`)).text();
  const out = {};
  for (const m of text.matchAll(/^sidecache_requests_total\{[^}]*protocol="postgres"[^}]*result="(\w+)"[^}]*\} (\d+)/gm))
    out[m[1]] = (out[m[1]] ?? 0) + Number(m[2]);
  return out;
}

let run = 0;
const scenarios = {
  async bind(bytes) {
    const value = Buffer.alloc(bytes, ++run & 0xff);
    value.writeInt32BE(run);
    const check = (row) => expectEqual('length', row.n, bytes);
    return [await timed(direct, BIND_SQL, [value], check), await timed(viaStored, BIND_SQL, [value], check)];
  },
  async 'bind-pass'(bytes) {
    const value = Buffer.alloc(bytes, ++run & 0xff);
    value.writeInt32BE(run);
    const check = (row) => expectEqual('length', row.n, bytes);
    return [await timed(direct, BIND_SQL, [value], check), await timed(viaPassing, BIND_SQL, [value], check)];
  },
  async 'result-store'(bytes) {
    const id = ++run;
    const check = (row) => expectEqual('result length', row.v.length, bytes);
    return [await timed(direct, RESULT_SQL, [bytes, id], check), await timed(viaStored, RESULT_SQL, [bytes, id], check)];
  },
  async 'result-hit'(bytes) {
    const id = ++run;
    const check = (row) => expectEqual('result length', row.v.length, bytes);
    const before = (await counts(stored)).hit ?? 0;
    await timed(viaStored, RESULT_SQL, [bytes, id], check);
    const times = [await timed(direct, RESULT_SQL, [bytes, id], check), await timed(viaStored, RESULT_SQL, [bytes, id], check)];
    if (((await counts(stored)).hit ?? 0) !== before + 1) throw new Error('result-hit: the second query was not a hit');
    return times;
  },
  async 'result-pass'(bytes) {
    const id = ++run;
    const check = (row) => expectEqual('result length', row.v.length, bytes);
    return [await timed(direct, RESULT_SQL, [bytes, id], check), await timed(viaPassing, RESULT_SQL, [bytes, id], check)];
  },
};

try {
  // Each statement's first use waits for its plan: warm both up with small values.
  for (const c of [viaStored, viaPassing]) {
    await c.query(BIND_SQL, [Buffer.alloc(1)]);
    await c.query(RESULT_SQL, [1, 0]);
  }
  for (const mib of SIZES_MIB) {
    for (const [name, scenario] of Object.entries(scenarios)) {
      const ratios = [];
      const cells = [];
      for (let i = 0; i < RUNS; i++) {
        const [d, s] = await scenario(mib * MiB);
        ratios.push(s / d);
        cells.push(`${d.toFixed(2)}/${s.toFixed(2)}`);
      }
      console.log(
        `${`${mib} MiB`.padStart(7)} ${name.padEnd(12)}  direct/sidecache s: ${cells.join('  ').padEnd(36)} ratio median ${median(ratios).toFixed(2)}`,
      );
    }
  }
  console.log(`requests (stored instance): ${JSON.stringify(await counts(stored))}; (passing instance): ${JSON.stringify(await counts(passing))}`);
} finally {
  for (const c of [direct, viaStored, viaPassing]) await c.end();
  await stored.stop();
  await passing.stop();
}

const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', new URL('./lib/pg-entry-memory.mjs', import.meta.url).pathname], {
  cwd: new URL('../', import.meta.url),
});
process.stdout.write(stdout);
