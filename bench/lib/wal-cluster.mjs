// A throwaway PostgreSQL cluster with wal_level=logical for the postgres-wal bus (the shared server
// runs with wal_level=replica), made as test/helpers/pg-cluster.ts makes one: initdb and pg_ctl as
// the `postgres` OS user when running as root (PostgreSQL refuses root: src/backend/main/main.c),
// fsync off (synchronous_commit on: see below), trust on 127.0.0.1, a free port; `stop()` removes everything.
import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';

function postgresOsUser() {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  if (line === undefined) return undefined;
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Why no cluster can be made here, or undefined. */
export function walClusterUnavailable() {
  if (!existsSync(join(BIN, 'initdb')) || !existsSync(join(BIN, 'pg_ctl'))) return `initdb/pg_ctl not found in ${BIN} (set PG_BIN)`;
  if (process.getuid?.() === 0 && postgresOsUser() === undefined) return 'running as root and there is no OS user "postgres" to run initdb as';
  return undefined;
}

/** Starts the cluster; resolves to { port, url, stop() }. */
export async function startWalCluster() {
  const dir = mkdtempSync(join(tmpdir(), 'sidecache-bench-wal-'));
  const data = join(dir, 'data');
  const user = process.getuid?.() === 0 ? postgresOsUser() : undefined;
  const as = user === undefined ? {} : { uid: user.uid, gid: user.gid };
  const port = await freePort();
  const ctl = (args) => run(join(BIN, 'pg_ctl'), ['-D', data, ...args], { ...as, cwd: dir });
  let started = false;
  const stop = async () => {
    if (started) await ctl(['-m', 'immediate', 'stop']).catch(() => undefined);
    started = false;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    if (user !== undefined) chownSync(dir, user.uid, user.gid);
    await run(join(BIN, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync', '--no-instructions'], { ...as, cwd: dir });
    // synchronous_commit stays on: with it off, a commit reaches the WAL sender only when the WAL
    // writer flushes it (every wal_writer_delay, 200 ms by default; PostgreSQL docs §30.4
    // "Asynchronous Commit"), which would be measured as the bus's latency.
    const conf = ['fsync = off', 'full_page_writes = off', 'wal_level = logical', 'max_replication_slots = 10', 'max_wal_senders = 10'];
    writeFileSync(join(data, 'postgresql.auto.conf'), `${conf.join('\n')}\n`);
    if (user !== undefined) chownSync(join(data, 'postgresql.auto.conf'), user.uid, user.gid);
    await ctl(['-w', '-l', join(dir, 'log'), '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`, 'start']);
    started = true;
    return { port, url: `postgres://postgres@127.0.0.1:${port}/postgres`, stop };
  } catch (err) {
    const log = existsSync(join(dir, 'log')) ? readFileSync(join(dir, 'log'), 'utf8') : '';
    await stop();
    throw new Error(`the throwaway wal_level=logical cluster did not start: ${err.message}\n${log}`, { cause: err });
  }
}
