import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './wait.js';

/** A real `sidecache start` with `workers: N` (its primary), with the addresses its log announced. */
export interface WorkersInstance {
  child: ChildProcess;
  file: string;
  admin: string;
  http: string | undefined;
  pgPort: number | undefined;
  /** Everything the primary and its workers logged so far (stderr). */
  log(): string;
  /** What they wrote on stdout (access lines) so far. */
  stdout(): string;
  /** The pids of the workers that logged `worker ready`, latest per worker number. */
  workerPids(): Map<number, number>;
  stop(): Promise<void>;
}

/** Starts `dist/cli.js start` on `config`; resolves once /readyz says every worker serves. */
export async function spawnWorkers(config: string): Promise<WorkersInstance> {
  const file = join(mkdtempSync(join(tmpdir(), 'sidecache-workers-')), 'sidecache.yaml');
  writeFileSync(file, config);
  const child = spawn(process.execPath, ['dist/cli.js', 'start', '-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  let stdout = '';
  child.stderr!.on('data', (chunk) => (log += chunk));
  child.stdout!.on('data', (chunk) => (stdout += chunk));
  const exited = once(child, 'exit').then(([code]) => {
    throw new Error(`sidecache exited ${code}: ${log}`);
  });
  await Promise.race([exited, waitFor(() => log.includes('"msg":"ready","workers"'), 'the primary ready', 30_000)]);
  exited.catch(() => undefined);
  const admin = /"msg":"admin listening"[^\n]*"address":"([^"]+)"/.exec(log)![1];
  const httpAddress = /"msg":"http listener ready"[^\n]*"address":"([^"]+)"/.exec(log)?.[1];
  const pg = /"msg":"postgres listener ready"[^\n]*"address":"[^"]*:(\d+)"/.exec(log)?.[1];
  return {
    child,
    file,
    admin: `http://${admin}`,
    http: httpAddress === undefined ? undefined : `http://${httpAddress}`,
    pgPort: pg === undefined ? undefined : Number(pg),
    log: () => log,
    stdout: () => stdout,
    workerPids: () => {
      const pids = new Map<number, number>();
      for (const m of log.matchAll(/"msg":"worker ready"[^\n]*"worker":(\d+),"pid":(\d+)/g)) pids.set(Number(m[1]), Number(m[2]));
      return pids;
    },
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

/** One request on a connection of its own (node:cluster hands each new connection to the next worker), or on `agent`'s. */
export function requestAlone(url: string, method = 'GET', agent: http.Agent | false = false): Promise<{ status: number; cacheStatus: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent, headers: agent === false ? { connection: 'close' } : {} }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, cacheStatus: String(res.headers['cache-status'] ?? ''), body }));
    });
    req.on('error', reject);
    req.end();
  });
}
