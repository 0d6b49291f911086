// PostgreSQL listener macro-benchmark with pgbench, direct vs through sidecache, same run.
// Workloads, each in simple, extended and prepared mode:
//   point-hit  point lookups by random key over 1,000 hot rows (answered from the cache once warm);
//   heavy      one aggregate over 1M rows (cached once warm);
//   point-miss point lookups by random key over 1M rows (almost every one a miss);
//   mixed      ORM-like: 80% reads over Zipf-distributed keys (items, and counters that are
//              written), 20% writes to counters through sidecache (each invalidates the counters' reads).
// Every cell runs direct and sidecache alternately BENCH_RUNS times (default 1) and prints the
// medians: TPS, p50/p99 latency and the ratio sidecache/direct (the median of the per-run ratios).
// The miss and mixed workloads run once per admission policy (`always`, `second-hit`), and the
// mixed one again with a 4 MiB store; each row gives the hit ratio and sidecache's CPU time per
// transaction. BENCH_ONLY=regex picks cells ("point-hit", "mixed prepared", …); BENCH_DURATION
// sets the seconds per run (5); BENCH_PIN=1 pins sidecache and pgbench (bench/lib/pg.mjs).
// Targets (issue 15) are printed next to each ratio.
// Needs pgbench and PostgreSQL at PGHOST/PGPORT (default 127.0.0.1:5432), database PGDATABASE (test).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { fmt, median, PG, pgbench, scratch, shares, startSidecache } from './lib/pg.mjs';

const DURATION_S = Number(process.env.BENCH_DURATION ?? 5);
const RUNS = Number(process.env.BENCH_RUNS ?? 1);
const ONLY = process.env.BENCH_ONLY ? new RegExp(process.env.BENCH_ONLY) : undefined;
const dir = scratch();

const admin = new pg.Client(PG);
await admin.connect();
await admin.query(`DROP TABLE IF EXISTS sc_bench_big, sc_bench_items, sc_bench_counters;
  CREATE TABLE sc_bench_big (id int PRIMARY KEY, v text);
  INSERT INTO sc_bench_big SELECT g, md5(g::text) FROM generate_series(1, 1000000) g; ANALYZE sc_bench_big;
  CREATE TABLE sc_bench_items (id int PRIMARY KEY, v text); INSERT INTO sc_bench_items SELECT g, md5(g::text) FROM generate_series(1, 100000) g;
  CREATE TABLE sc_bench_counters (id int PRIMARY KEY, n int NOT NULL DEFAULT 0); INSERT INTO sc_bench_counters SELECT g FROM generate_series(1, 10000) g;
  ANALYZE sc_bench_items; ANALYZE sc_bench_counters`);

const files = {
  'point-hit': '\\set id random(1, 1000)\nSELECT v FROM sc_bench_big WHERE id = :id;\n',
  heavy: 'SELECT count(*), avg(length(v)), max(v) FROM sc_bench_big;\n',
  'point-miss': '\\set id random(1, 1000000)\nSELECT v FROM sc_bench_big WHERE id = :id;\n',
  'mixed-items': '\\set id random_zipfian(1, 100000, 1.1)\nSELECT id, v FROM sc_bench_items WHERE id = :id;\n',
  'mixed-counters': '\\set id random_zipfian(1, 10000, 1.1)\nSELECT id, n FROM sc_bench_counters WHERE id = :id;\n',
  'mixed-write': '\\set id random_zipfian(1, 10000, 1.1)\nUPDATE sc_bench_counters SET n = n + 1 WHERE id = :id;\n',
};
for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, `${name}.sql`), text);
const scripts = {
  'point-hit': [join(dir, 'point-hit.sql')],
  heavy: [join(dir, 'heavy.sql')],
  'point-miss': [join(dir, 'point-miss.sql')],
  mixed: [`${join(dir, 'mixed-items.sql')}@60`, `${join(dir, 'mixed-counters.sql')}@20`, `${join(dir, 'mixed-write.sql')}@20`],
};
/** Issue 15's targets: TPS ratio to direct. */
const TARGET = { 'point-hit': 2.5, heavy: 100, 'point-miss': 0.6, mixed: 1.5 };

/** One cell: direct and sidecache alternately, medians printed. */
async function cell(sidecache, workload, mode, label = workload) {
  const seconds = workload === 'heavy' ? Math.max(2, Math.ceil(DURATION_S / 2)) : DURATION_S;
  // Warm the cache for the hot workloads (the miss workload stays mostly cold by design).
  if (workload !== 'point-miss') await pgbench(sidecache.port, mode, scripts[workload], 2);
  const direct = [];
  const proxied = [];
  let hit = '';
  const cpu = [];
  for (let i = 0; i < RUNS; i++) {
    direct.push(await pgbench(PG.port, mode, scripts[workload], seconds));
    const before = await sidecache.counts();
    const cpuBefore = sidecache.cpuMs();
    const run = await pgbench(sidecache.port, mode, scripts[workload], seconds);
    proxied.push(run);
    // sidecache's own CPU per transaction: what the scheduler and the other tenants of the machine do not change.
    if (cpuBefore !== undefined) cpu.push(((sidecache.cpuMs() - cpuBefore) * 1000) / (run.tps * seconds));
    hit = shares(before, await sidecache.counts()).text;
  }
  const med = (runs) => ({ tps: median(runs.map((r) => r.tps)), p50: median(runs.map((r) => r.p50)), p99: median(runs.map((r) => r.p99)) });
  const ratio = median(proxied.map((p, i) => p.tps / direct[i].tps));
  const verdict = ratio >= TARGET[workload] ? 'met' : 'NOT met';
  console.log(
    `${label.padEnd(21)} ${mode.padEnd(8)}  direct ${fmt(med(direct))}   sidecache ${fmt(med(proxied))}   ratio ${ratio.toFixed(2).padStart(7)} (target ${TARGET[workload]}: ${verdict})   ${hit}${cpu.length > 0 ? `   sidecache CPU ${median(cpu).toFixed(1)} µs/tx` : ''}`,
  );
}

const wanted = (label, mode) => ONLY === undefined || ONLY.test(`${label} ${mode}`);
const modes = ['simple', 'extended', 'prepared'];
/**
 * Each variant is one sidecache: the default (plain LRU: every miss stored), then `second-hit`
 * admission on the miss and mixed workloads, then both policies with a store too small for the
 * mixed workload's keys, where admission decides what stays.
 */
const variants = [
  { suffix: '', options: {}, workloads: ['point-hit', 'heavy', 'point-miss', 'mixed'], modes },
  { suffix: ' second-hit', options: { listener: 'admission: second-hit' }, workloads: ['point-miss', 'mixed'], modes },
  { suffix: ' 4MiB always', options: { maxBytes: '4MiB' }, workloads: ['mixed'], modes: ['prepared'] },
  { suffix: ' 4MiB second-hit', options: { maxBytes: '4MiB', listener: 'admission: second-hit' }, workloads: ['mixed'], modes: ['prepared'] },
];
try {
  for (const [i, variant] of variants.entries()) {
    const cells = variant.workloads.flatMap((w) => variant.modes.filter((m) => wanted(w + variant.suffix, m)).map((m) => [w, m]));
    if (cells.length === 0) continue;
    const sidecache = await startSidecache(dir, { ...variant.options, name: `variant-${i}` });
    try {
      for (const [workload, mode] of cells) await cell(sidecache, workload, mode, workload + variant.suffix);
    } finally {
      await sidecache.stop();
    }
  }
} finally {
  await admin.query('DROP TABLE IF EXISTS sc_bench_big, sc_bench_items, sc_bench_counters');
  await admin.end();
}
