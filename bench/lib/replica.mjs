// One sidecache replica for the benches: `dist/cli.js start` in a child process (as
// test/helpers/instance.ts spawns one), resolved once it logged `ready` with its listeners'
// addresses. Its log is kept in memory for the report (message counts) and for a failed start.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('../../', import.meta.url);

/** Starts a replica with `config` (YAML); resolves to { child, admin, http, pgPort, logCounts, stop() }. */
export async function startReplica(config) {
  const dir = mkdtempSync(join(tmpdir(), 'sidecache-bench-replica-'));
  const file = join(dir, 'sidecache.yaml');
  writeFileSync(file, config);
  const child = spawn(process.execPath, ['dist/cli.js', 'start', '-c', file], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
  const logCounts = new Map();
  const found = {};
  let out = '';
  let pending = '';
  return new Promise((resolve, reject) => {
    child.stderr.on('data', (chunk) => {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop();
      for (const line of lines) {
        if (!found.ready) out += `${line}\n`;
        let entry;
        try {
          entry = JSON.parse(line);
        } catch {
          entry = { level: 'raw', msg: line.slice(0, 80) };
        }
        const label = `${entry.level} ${entry.msg}`;
        logCounts.set(label, (logCounts.get(label) ?? 0) + 1);
        if (entry.msg === 'http listener ready') found.http ??= `http://${entry.address}`;
        if (entry.msg === 'postgres listener ready') found.pgPort ??= Number(/:(\d+)$/.exec(entry.address)?.[1]);
        if (entry.msg === 'admin listening') found.admin = `http://${entry.address}`;
        if (entry.msg === 'ready') found.ready = true;
        if (found.ready && found.admin) {
          resolve({
            child,
            admin: found.admin,
            http: found.http,
            pgPort: found.pgPort,
            logCounts,
            async metrics() {
              return (await fetch(`${found.admin}/metrics`)).text();
            },
            async stop() {
              if (child.exitCode === null) {
                child.kill('SIGTERM');
                await once(child, 'exit');
              }
              rmSync(dir, { recursive: true, force: true });
            },
          });
        }
      }
    });
    child.once('exit', (code) => reject(new Error(`sidecache exited ${code}: ${out}`)));
  });
}
