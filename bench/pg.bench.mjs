// PostgreSQL listener macro-benchmark with pgbench, direct vs through sidecache, same run.
// Workloads, each in simple, extended and prepared mode:
//   point-hit  point lookups by random key over 1,000 hot rows (answered from the cache once warm);
//   heavy      one aggregate over 1M rows (cached once warm);
//   point-miss point lookups by random key over 1M rows (almost every one a miss).
// Prints TPS and mean latency for both, with the ratio sidecache/direct.
// Needs pgbench and PostgreSQL at PGHOST/PGPORT (default 127.0.0.1:5432), database PGDATABASE (test).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { fmt, PG, pgbench as runPgbench, scratch, startSidecache } from './lib/pg.mjs';

const DURATION_S = Number(process.env.BENCH_DURATION ?? 5);
const dir = scratch();

const admin = new pg.Client(PG);
await admin.connect();
await admin.query(`DROP TABLE IF EXISTS sc_bench_big; CREATE TABLE sc_bench_big (id int PRIMARY KEY, v text);
  INSERT INTO sc_bench_big SELECT g, md5(g::text) FROM generate_series(1, 1000000) g; ANALYZE sc_bench_big`);

const scripts = {
  'point-hit': '\\set id random(1, 1000)\nSELECT v FROM sc_bench_big WHERE id = :id;\n',
  heavy: 'SELECT count(*), avg(length(v)), max(v) FROM sc_bench_big;\n',
  'point-miss': '\\set id random(1, 1000000)\nSELECT v FROM sc_bench_big WHERE id = :id;\n',
};
for (const [name, text] of Object.entries(scripts)) writeFileSync(join(dir, `${name}.sql`), text);

const sidecache = await startSidecache(dir);
const { port } = sidecache;
const pgbench = (targetPort, mode, script, seconds) => runPgbench(targetPort, mode, join(dir, `${script}.sql`), seconds);

try {
  for (const script of Object.keys(scripts)) {
    for (const mode of ['simple', 'extended', 'prepared']) {
      const seconds = script === 'heavy' ? Math.max(2, Math.ceil(DURATION_S / 2)) : DURATION_S;
      const direct = await pgbench(PG.port, mode, script, seconds);
      // Warm the cache for the hot workloads (the miss workload stays mostly cold by design).
      if (script !== 'point-miss') await pgbench(port, mode, script, 2);
      const proxied = await pgbench(port, mode, script, seconds);
      console.log(`${script.padEnd(10)} ${mode.padEnd(8)}  direct ${fmt(direct)}   sidecache ${fmt(proxied)}   ratio ${(proxied.tps / direct.tps).toFixed(2)}`);
    }
  }
} finally {
  await sidecache.stop();
  await admin.query('DROP TABLE IF EXISTS sc_bench_big');
  await admin.end();
}
