/**
 * A throwaway PostgreSQL cluster for one test file: initdb in a fresh temp directory, a chosen
 * pg_hba.conf (password or certificate authentication on 127.0.0.1; trust for pg18-server.ts), optionally TLS with a
 * throwaway CA, started on a free port and removed at the end. The shared server at PGHOST trusts
 * 127.0.0.1, so authentication and upstream TLS can only be tested against one of these.
 * The binaries are those of the run's server (PostgreSQL 18 in the `pg18` project, see
 * pg18-server.ts), else $PG_BIN, else the machine's PostgreSQL 15; `bin` picks others.
 */
import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, inject } from 'vitest';
import './pg-provided.js';

const run = promisify(execFile);

/** Where initdb, pg_ctl and postgres are when a cluster does not name its own `bin`. */
function defaultBin(): string {
  return inject('pgServer')?.bin ?? process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';
}

export interface ClusterOptions {
  /**
   * Method of the `host all all 127.0.0.1/32` line; password_encryption follows (md5 or
   * scram-sha-256; PostgreSQL's default, scram-sha-256, under trust).
   */
  auth: 'scram-sha-256' | 'md5' | 'trust';
  /** Directory holding initdb, pg_ctl and postgres (default: see the file's comment). */
  bin?: string;
  /** ssl=on with a server certificate for `localhost` (DNS name only) from a throwaway CA, which also signs client certificates. */
  ssl?: boolean;
  /** pg_hba.conf lines put before the `host` line, e.g. `hostssl all alice 127.0.0.1/32 cert`. */
  hba?: string[];
  /** More postgresql.conf lines, e.g. `wal_level = logical`. */
  conf?: string[];
}

/** Files of the cluster's throwaway PKI (PEM paths). */
export interface ClusterPki {
  /** The CA that signed the server's certificate and the client certificates. */
  caFile: string;
  /** Another CA, which signed nothing the server shows. */
  otherCaFile: string;
  /** A client certificate whose CN is `user`, and its key. */
  clientCert(user: string): { cert: string; key: string };
}

export interface PgCluster {
  host: '127.0.0.1';
  port: number;
  /** The superuser `postgres`'s password. */
  password: string;
  /** Present when `ssl` was asked for. */
  pki: ClusterPki | undefined;
  /** Runs SQL as the superuser over the Unix socket (trusted), whatever pg_hba says of TCP. */
  admin(sql: string): Promise<pg.QueryResult[]>;
  stop(): Promise<void>;
}

/** Why a cluster cannot be made here (with the binaries of `bin`), or undefined when it can. */
export function clusterUnavailable(bin = defaultBin()): string | undefined {
  const missing = (why: string) => {
    const reason = `SKIPPED: no throwaway PostgreSQL cluster: ${why}`;
    console.warn(reason);
    return reason;
  };
  if (!existsSync(join(bin, 'initdb')) || !existsSync(join(bin, 'pg_ctl'))) return missing(`initdb/pg_ctl not found in ${bin} (set PG_BIN)`);
  if (process.getuid?.() === 0 && postgresOsUser() === undefined) return missing('running as root and there is no OS user "postgres" to run initdb as');
  try {
    execFileSync('openssl', ['version'], { stdio: 'pipe' });
  } catch {
    // Only clusters with ssl need it, but the files using this helper all test TLS or run beside it.
    return missing('openssl is not installed');
  }
  return undefined;
}

/** uid/gid of the `postgres` OS user, from /etc/passwd. */
export function postgresOsUser(): { uid: number; gid: number } | undefined {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  if (line === undefined) return undefined;
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: 'pipe' });
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A key and a certificate signed by `ca`, with `subj` and optional extensions. */
function signed(dir: string, name: string, ca: string, subj: string, ext?: string): { cert: string; key: string } {
  const at = (suffix: string) => join(dir, `${name}.${suffix}`);
  openssl(['req', ...EC, '-keyout', at('key'), '-out', at('csr'), '-subj', subj]);
  const extArgs = ext === undefined ? [] : (writeFileSync(at('ext'), `${ext}\n`), ['-extfile', at('ext')]);
  openssl(['x509', '-req', '-in', at('csr'), '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', at('pem'), '-days', '1', ...extArgs]);
  return { cert: at('pem'), key: at('key') };
}

function makePki(dir: string): ClusterPki & { server: { cert: string; key: string } } {
  const ca = (name: string) =>
    openssl(['req', '-x509', ...EC, '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.pem`), '-days', '1', '-subj', `/CN=${name}`]);
  ca('ca');
  ca('other-ca');
  const server = signed(dir, 'server', join(dir, 'ca'), '/CN=localhost', 'subjectAltName=DNS:localhost');
  const clients = new Map<string, { cert: string; key: string }>();
  return {
    caFile: join(dir, 'ca.pem'),
    otherCaFile: join(dir, 'other-ca.pem'),
    server,
    clientCert(user) {
      let made = clients.get(user);
      if (made === undefined) clients.set(user, (made = signed(dir, `client-${user}`, join(dir, 'ca'), `/CN=${user}`)));
      return made;
    },
  };
}

/** Starts a cluster; `stop()` removes everything it made. */
export async function startCluster(options: ClusterOptions): Promise<PgCluster> {
  const bin = options.bin ?? defaultBin();
  const dir = mkdtempSync(join(tmpdir(), 'sidecache-cluster-'));
  const data = join(dir, 'data');
  // PostgreSQL refuses to run as root (src/backend/main/main.c: "root" execution of the PostgreSQL server is not permitted).
  const user = process.getuid?.() === 0 ? postgresOsUser() : undefined;
  const as = user === undefined ? {} : { uid: user.uid, gid: user.gid };
  const port = await freePort();
  const password = `pw-${process.pid}-${port}`;
  const ctl = (args: string[]) => run(join(bin, 'pg_ctl'), ['-D', data, ...args], { ...as, cwd: dir });
  let started = false;
  const stop = async () => {
    if (started) await ctl(['-m', 'immediate', 'stop']).catch(() => undefined);
    started = false;
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    if (user !== undefined) chownSync(dir, user.uid, user.gid);
    // trust at first: the real rules go in below, once the password is set over the socket.
    await run(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync', '--no-instructions'], { ...as, cwd: dir });
    const pki = options.ssl === true ? makePki(dir) : undefined;
    const conf = [
      ...(options.auth === 'trust' ? [] : [`password_encryption = '${options.auth}'`]),
      'fsync = off',
      'synchronous_commit = off',
      'full_page_writes = off',
      ...(options.conf ?? []),
    ];
    if (pki !== undefined) {
      // PostgreSQL refuses a key others can read.
      chmodSync(pki.server.key, 0o600);
      if (user !== undefined) for (const f of [pki.server.key, pki.server.cert, pki.caFile]) chownSync(f, user.uid, user.gid);
      conf.push('ssl = on', `ssl_cert_file = '${pki.server.cert}'`, `ssl_key_file = '${pki.server.key}'`, `ssl_ca_file = '${pki.caFile}'`);
    }
    writeFileSync(join(data, 'postgresql.auto.conf'), `${conf.join('\n')}\n`);
    writeFileSync(join(data, 'pg_hba.conf'), ['local all all trust', ...(options.hba ?? []), `host all all 127.0.0.1/32 ${options.auth}`, ''].join('\n'));
    if (user !== undefined) for (const f of ['postgresql.auto.conf', 'pg_hba.conf']) chownSync(join(data, f), user.uid, user.gid);
    await ctl(['-w', '-l', join(dir, 'log'), '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`, 'start']);
    started = true;
    const admin = async (sql: string): Promise<pg.QueryResult[]> => {
      const client = new pg.Client({ host: dir, port, user: 'postgres', database: 'postgres' });
      await client.connect();
      try {
        const result = (await client.query(sql)) as pg.QueryResult | pg.QueryResult[];
        return Array.isArray(result) ? result : [result];
      } finally {
        await client.end();
      }
    };
    // Hashed with password_encryption, so an md5 cluster really stores md5.
    await admin(`ALTER ROLE postgres PASSWORD '${password}'`);
    return { host: '127.0.0.1', port, password, pki, admin, stop };
  } catch (err) {
    const log = existsSync(join(dir, 'log')) ? readFileSync(join(dir, 'log'), 'utf8') : '';
    await stop();
    throw new Error(`the throwaway cluster did not start: ${(err as Error).message}\n${log}`, { cause: err });
  }
}

/** One cluster for the file: started before its tests, stopped after them. */
export function useCluster(options: ClusterOptions): PgCluster {
  const cluster = {} as PgCluster;
  beforeAll(async () => void Object.assign(cluster, await startCluster(options)), 60_000);
  afterAll(async () => await cluster.stop?.());
  return cluster;
}
