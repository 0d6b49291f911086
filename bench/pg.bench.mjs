// PostgreSQL listener macro-benchmark with pgbench, direct vs through sidecache, same run.
// Workloads, each in simple, extended and prepared mode:
//   point-hit  point lookups by random key over 1,000 hot rows (answered from the cache once warm);
//   heavy      one aggregate over 1M rows (cached once warm);
//   point-miss point lookups by random key over 1M rows (almost every one a miss).
// Prints TPS and mean latency for both, with the ratio sidecache/direct.
// Needs pgbench and PostgreSQL at PGHOST/PGPORT (default 127.0.0.1:5432), database PGDATABASE (test).
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);
const DURATION_S = Number(process.env.BENCH_DURATION ?? 5);
const PG = {
  host: process.env.PGHOST ?? '127.0.0.1',
  port: Number(process.env.PGPORT ?? 5432),
  user: process.env.PGUSER ?? 'postgres',
  database: process.env.PGDATABASE ?? 'test',
};
const root = new URL('../', import.meta.url);
const dir = mkdtempSync(join(tmpdir(), 'sidecache-pgbench-'));

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

const config = join(dir, 'bench.yaml');
writeFileSync(
  config,
  `admin: { listen: "127.0.0.1:0" }\ncache: { maxBytes: 1GiB }\npostgres:\n  - { name: bench, listen: "127.0.0.1:0", upstream: "postgres://${PG.host}:${PG.port}?sslmode=disable", defaultTtl: 1h }\n`,
);
const child = spawn(process.execPath, ['dist/cli.js', 'start', '-c', config], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
const port = await new Promise((resolve, reject) => {
  let out = '';
  child.stderr.on('data', (chunk) => {
    out += chunk;
    const match = /"msg":"postgres listener ready"[^\n]*"address":"[^"]*:(\d+)"/.exec(out);
    if (match) resolve(Number(match[1]));
  });
  child.once('exit', (code) => reject(new Error(`sidecache exited ${code}: ${out}`)));
});

async function pgbench(targetPort, mode, script, seconds, clients = 8) {
  const env = { ...process.env, PGHOST: '127.0.0.1', PGPORT: String(targetPort), PGUSER: PG.user, PGDATABASE: PG.database, PGSSLMODE: 'disable' };
  const { stdout } = await run('pgbench', ['-n', '-M', mode, '-c', String(clients), '-j', '2', '-T', String(seconds), '-f', join(dir, `${script}.sql`)], {
    env,
    maxBuffer: 1 << 24,
  });
  const tps = Number(/tps = ([\d.]+)/.exec(stdout)?.[1]);
  const latency = Number(/latency average = ([\d.]+) ms/.exec(stdout)?.[1]);
  const failed = Number(/number of failed transactions: (\d+)/.exec(stdout)?.[1] ?? 0);
  if (!Number.isFinite(tps) || failed > 0) throw new Error(`pgbench ${mode} ${script} on ${targetPort}: ${stdout}`);
  return { tps, latency };
}

const fmt = (r) => `${Math.round(r.tps).toLocaleString('en-US').padStart(9)} tps  ${r.latency.toFixed(3).padStart(8)} ms`;
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
  child.kill('SIGTERM');
  await once(child, 'exit');
  await admin.query('DROP TABLE IF EXISTS sc_bench_big');
  await admin.end();
}
