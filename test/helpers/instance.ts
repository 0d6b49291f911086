import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A real sidecache process, with the addresses its log lines announced. */
export interface Instance {
  child: ChildProcess;
  admin: string;
  /** `http://…` of its first HTTP listener, if it has one. */
  http: string | undefined;
  /** Port of its first PostgreSQL listener, if it has one. */
  pgPort: number | undefined;
  stop(): Promise<void>;
}

/** Starts `dist/cli.js start` with `config`; resolves once it logged `ready` (and the listeners `wants` names). */
export async function spawnInstance(config: string, wants: { http?: boolean; postgres?: boolean } = { http: true }): Promise<Instance> {
  const file = join(mkdtempSync(join(tmpdir(), 'sidecache-inst-')), 'sidecache.yaml');
  writeFileSync(file, config);
  const child = spawn(process.execPath, ['dist/cli.js', 'start', '-c', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  return new Promise((resolve, reject) => {
    child.stderr!.on('data', (chunk) => {
      log += chunk;
      const admin = /"msg":"admin listening"[^\n]*"address":"([^"]+)"/.exec(log)?.[1];
      const http = /"msg":"http listener ready"[^\n]*"address":"([^"]+)"/.exec(log)?.[1];
      const pg = /"msg":"postgres listener ready"[^\n]*"address":"[^"]*:(\d+)"/.exec(log)?.[1];
      if (admin === undefined || !log.includes('"msg":"ready"')) return;
      if ((wants.http === true && http === undefined) || (wants.postgres === true && pg === undefined)) return;
      resolve({
        child,
        admin: `http://${admin}`,
        http: http === undefined ? undefined : `http://${http}`,
        pgPort: pg === undefined ? undefined : Number(pg),
        stop: async () => {
          if (child.exitCode !== null) return;
          child.kill('SIGTERM');
          await once(child, 'exit');
        },
      });
    });
    child.once('exit', (code) => reject(new Error(`sidecache exited ${code}: ${log}`)));
  });
}
