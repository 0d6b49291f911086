// What the PostgreSQL benches share: the server they measure against, sidecache started from the
// built CLI in a child process, and pgbench runs parsed into TPS and latency.
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const PG = {
  host: process.env.PGHOST ?? '127.0.0.1',
  port: Number(process.env.PGPORT ?? 5432),
  user: process.env.PGUSER ?? 'postgres',
  database: process.env.PGDATABASE ?? 'test',
};

/** A temporary directory for pgbench scripts and the config. */
export function scratch() {
  return mkdtempSync(join(tmpdir(), 'sidecache-pgbench-'));
}

/**
 * Starts sidecache with one Postgres listener in front of PG; resolves to its ports and a stop().
 * `cache` is the YAML flow mapping of the cache section; `name` names the config file, so that
 * several instances can share `dir`.
 */
export async function startSidecache(dir, { cache = '{ maxBytes: 1GiB }', name = 'bench' } = {}) {
  const config = join(dir, `${name}.yaml`);
  writeFileSync(
    config,
    `admin: { listen: "127.0.0.1:0" }\ncache: ${cache}\npostgres:\n  - { name: bench, listen: "127.0.0.1:0", upstream: "postgres://${PG.host}:${PG.port}?sslmode=disable", defaultTtl: 1h }\n`,
  );
  const child = spawn(process.execPath, ['dist/cli.js', 'start', '-c', config], {
    cwd: new URL('../../', import.meta.url),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
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
    async stop() {
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

/** Runs pgbench against `port` and returns TPS and mean latency; any failed transaction throws. */
export async function pgbench(port, mode, scriptFile, seconds, clients = 8) {
  const env = { ...process.env, PGHOST: '127.0.0.1', PGPORT: String(port), PGUSER: PG.user, PGDATABASE: PG.database, PGSSLMODE: 'disable' };
  const { stdout } = await run('pgbench', ['-n', '-M', mode, '-c', String(clients), '-j', '2', '-T', String(seconds), '-f', scriptFile], {
    env,
    maxBuffer: 1 << 24,
  });
  const tps = Number(/tps = ([\d.]+)/.exec(stdout)?.[1]);
  const latency = Number(/latency average = ([\d.]+) ms/.exec(stdout)?.[1]);
  const failed = Number(/number of failed transactions: (\d+)/.exec(stdout)?.[1] ?? 0);
  if (!Number.isFinite(tps) || failed > 0) throw new Error(`pgbench ${mode} ${scriptFile} on ${port}: ${stdout}`);
  return { tps, latency };
}

export const fmt = (r) => `${Math.round(r.tps).toLocaleString('en-US').padStart(9)} tps  ${r.latency.toFixed(3).padStart(8)} ms`;
