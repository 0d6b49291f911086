// What the PostgreSQL benches share: the server they measure against, sidecache started from the
// built CLI in a child process, and pgbench runs parsed into TPS and latency percentiles.
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
/** USER_HZ: the unit of utime/stime in /proc/<pid>/stat. */
const CLOCK_TICKS = Number((await run('getconf', ['CLK_TCK']).catch(() => ({ stdout: '100' }))).stdout.trim()) || 100;

export const PG = {
  host: process.env.PGHOST ?? '127.0.0.1',
  port: Number(process.env.PGPORT ?? 5432),
  user: process.env.PGUSER ?? 'postgres',
  database: process.env.PGDATABASE ?? 'test',
};

/**
 * CPU pinning (BENCH_PIN=1): sidecache on core 0, pgbench on core 1, as bench-compare's pg.sh
 * does. Off by default: the PostgreSQL server is not started here and stays unpinned, so pinning
 * sidecache alone would measure it on one core against a server on all of them.
 */
const PIN =
  process.env.BENCH_PIN === '1' &&
  availableParallelism() >= 2 &&
  (await run('taskset', ['-V']).then(
    () => true,
    () => false,
  ));
const pinned = (cpu, command, args) => (PIN ? ['taskset', ['-c', cpu, command, ...args]] : [command, args]);

/** A temporary directory for pgbench scripts and the config. */
export function scratch() {
  return mkdtempSync(join(tmpdir(), 'sidecache-pgbench-'));
}

/**
 * Starts sidecache with one Postgres listener in front of PG; resolves to its ports and a stop().
 * `listener` is YAML for more keys of the listener (`admission: second-hit`), `maxBytes` and
 * `maxEntryBytes` the store's sizes, or `cache` the whole YAML flow mapping of the cache section;
 * `name` names the config file, so that several instances can share `dir`.
 */
export async function startSidecache(dir, { cache, listener = '', maxBytes = '1GiB', maxEntryBytes = '1MiB', name = 'bench' } = {}) {
  const config = join(dir, `${name}.yaml`);
  const cacheYaml = cache ?? `{ maxBytes: ${maxBytes}, maxEntryBytes: ${maxEntryBytes} }`;
  writeFileSync(
    config,
    `admin: { listen: "127.0.0.1:0" }\ncache: ${cacheYaml}\npostgres:\n  - { name: bench, listen: "127.0.0.1:0", upstream: "postgres://${PG.host}:${PG.port}?sslmode=disable", defaultTtl: 1h${listener ? `, ${listener}` : ''} }\n`,
  );
  const [command, args] = pinned('0', process.execPath, [
    ...(process.env.BENCH_NODE_FLAGS?.split(' ').filter(Boolean) ?? []),
    'dist/cli.js',
    'start',
    '-c',
    config,
  ]);
  const child = spawn(command, args, { cwd: new URL('../../', import.meta.url), stdio: ['ignore', 'ignore', 'pipe'] });
  const ports = await new Promise((resolve, reject) => {
    let out = '';
    child.stderr.on('data', (chunk) => {
      out += chunk;
      const pg = /"msg":"postgres listener ready"[^\n]*"address":"[^"]*:(\d+)"/.exec(out);
      const admin = /"msg":"admin listening"[^\n]*"address":"[^"]*:(\d+)"/.exec(out);
      if (pg && admin) resolve({ port: Number(pg[1]), admin: Number(admin[1]) });
    });
    child.once('exit', (code) => reject(new Error(`sidecache exited ${code}: ${out}`)));
  });
  return {
    ...ports,
    /** CPU time sidecache has used so far (user + system, ms), from /proc; undefined where there is none. */
    cpuMs() {
      try {
        const fields = readFileSync(`/proc/${child.pid}/stat`, 'latin1').split(') ')[1].split(' ');
        return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
      } catch {
        // Not Linux: the bench prints no CPU figure.
        return undefined;
      }
    },
    /** sidecache_requests_total of the Postgres listener, by result. */
    async counts() {
      const text = await (await fetch(`http://127.0.0.1:${ports.admin}/metrics`)).text();
      const out = { hit: 0, miss: 0, bypass: 0, error: 0 };
      for (const m of text.matchAll(/^sidecache_requests_total\{[^}]*protocol="postgres"[^}]*result="(\w+)"[^}]*\} (\d+)/gm))
        out[m[1]] = (out[m[1]] ?? 0) + Number(m[2]);
      return out;
    },
    async stop() {
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

/** Hit, miss and bypass shares between two `counts()`, as text. */
export function shares(before, after) {
  const d = Object.fromEntries(Object.keys(after).map((k) => [k, after[k] - (before[k] ?? 0)]));
  const total = d.hit + d.miss + d.bypass + d.error || 1;
  const pct = (n) => `${((100 * n) / total).toFixed(1)}%`;
  return { hit: d.hit / total, text: `hit ${pct(d.hit)}  miss ${pct(d.miss)}  bypass ${pct(d.bypass)}` };
}

/**
 * Runs pgbench against `port` and returns TPS, mean, p50 and p99 latency (ms, from the
 * per-transaction log); any failed transaction throws. `scripts` is one file or several
 * `file@weight`.
 */
export async function pgbench(port, mode, scripts, seconds, clients = 8) {
  const env = { ...process.env, PGHOST: '127.0.0.1', PGPORT: String(port), PGUSER: PG.user, PGDATABASE: PG.database, PGSSLMODE: 'disable' };
  const logs = scratch();
  const files = (Array.isArray(scripts) ? scripts : [scripts]).flatMap((f) => ['-f', f]);
  const [command, args] = pinned('1', 'pgbench', [
    '-n',
    '-M',
    mode,
    '-c',
    String(clients),
    '-j',
    '2',
    '-T',
    String(seconds),
    '-l',
    `--log-prefix=${join(logs, 'tx')}`,
    ...files,
  ]);
  try {
    const { stdout } = await run(command, args, { env, maxBuffer: 1 << 24, cwd: logs });
    const tps = Number(/tps = ([\d.]+)/.exec(stdout)?.[1]);
    const latency = Number(/latency average = ([\d.]+) ms/.exec(stdout)?.[1]);
    const failed = Number(/number of failed transactions: (\d+)/.exec(stdout)?.[1] ?? 0);
    if (!Number.isFinite(tps) || failed > 0) throw new Error(`pgbench ${mode} ${scripts} on ${port}: ${stdout}`);
    return { tps, latency, ...percentiles(logs) };
  } finally {
    rmSync(logs, { recursive: true, force: true });
  }
}

/** p50 and p99 of the per-transaction latencies pgbench logged (third column, µs). */
function percentiles(dir) {
  const us = [];
  for (const file of readdirSync(dir).filter((f) => f.startsWith('tx'))) {
    for (const line of readFileSync(join(dir, file), 'latin1').split('\n')) {
      const third = line.split(' ', 3)[2];
      if (third !== undefined) us.push(Number(third));
    }
  }
  const sorted = Float64Array.from(us).sort();
  const at = (q) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] / 1000);
  return { p50: at(0.5), p99: at(0.99) };
}

export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export const fmt = (r) =>
  `${Math.round(r.tps).toLocaleString('en-US').padStart(9)} tps  p50 ${r.p50.toFixed(3).padStart(7)} ms  p99 ${r.p99.toFixed(3).padStart(8)} ms`;
