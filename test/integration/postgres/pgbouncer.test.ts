/**
 * sidecache in front of PgBouncer, run from examples/pgbouncer/ (ports and paths rewritten), in front of a
 * throwaway SCRAM cluster: app → sidecache → PgBouncer → PostgreSQL.
 *
 * With `pool_mode = session` (the example) a client keeps one server connection for its whole session
 * (https://www.pgbouncer.org/config.html#pool_mode), which is what sidecache models: queries work, repeats
 * are hits, a SET holds, a write through sidecache invalidates. With `transaction` or `statement` pooling a
 * SET stays on the server connection for whichever client gets it next, and sidecache, which keys its cache
 * on the session state it saw confirmed, stores an answer made under another client's SET and serves it on.
 * The catalog asks PostgreSQL directly: PgBouncer refuses the startup parameters its connection sets.
 * PgBouncer in front of sidecache (app → PgBouncer → sidecache) makes PgBouncer's pooled server connections
 * sidecache's sessions: what one app client leaves in one (a taint) reaches the next, unless PgBouncer's
 * server_reset_query (DISCARD ALL, session mode only) ends it.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterUnavailable, type PgCluster, useCluster } from '../../helpers/pg-cluster.js';
import { metric, startSidecache } from '../../helpers/sidecache.js';
import { waitFor } from '../../helpers/wait.js';
import type { SidecacheServer } from '../../../src/server.js';

const example = new URL('../../../examples/pgbouncer/', import.meta.url).pathname;

/** Debian installs it in /usr/sbin, which a non-root PATH often lacks. */
const PGBOUNCER = process.env.PGBOUNCER ?? (existsSync('/usr/sbin/pgbouncer') ? '/usr/sbin/pgbouncer' : 'pgbouncer');
const noPgbouncer = (() => {
  try {
    execFileSync(PGBOUNCER, ['--version'], { stdio: 'pipe' });
    return undefined;
  } catch {
    const reason = 'SKIPPED: pgbouncer is not installed (apt-get install pgbouncer, or set PGBOUNCER to its path): the PgBouncer stacking tests do not run';
    console.warn(reason);
    return reason;
  }
})();
const unavailable = noPgbouncer ?? clusterUnavailable();

const APP_PASSWORD = 'app-secret';
const HITS = { protocol: 'postgres', listener: 'main', result: 'hit' };

/** `text` with `from` replaced by `to`, failing when `from` is not there (the example changed under the test). */
function rewrite(text: string, from: string, to: string): string {
  expect(text, `examples/pgbouncer no longer holds ${from}`).toContain(from);
  return text.split(from).join(to);
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

/** PgBouncer refuses to run as root: under root it runs as the `postgres` OS user, as the cluster does. */
function osUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  if (line === undefined) throw new Error('running as root and there is no OS user "postgres" to run pgbouncer as');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

interface Bouncer {
  port: number;
  stop(): Promise<void>;
}

/** Runs the example's pgbouncer.ini in front of port `target` with `changes` applied, in the foreground, in a temp dir of its own. */
async function startPgbouncer(target: number, userlist: string, changes: [string, string][] = []): Promise<Bouncer> {
  const port = await freePort();
  let ini = readFileSync(join(example, 'pgbouncer.ini'), 'utf8');
  ini = rewrite(ini, 'host=postgres port=5432', `host=127.0.0.1 port=${target}`);
  ini = rewrite(ini, 'listen_addr = 0.0.0.0', 'listen_addr = 127.0.0.1');
  ini = rewrite(ini, 'listen_port = 6433', `listen_port = ${port}`);
  for (const [from, to] of changes) ini = rewrite(ini, from, to);
  const dir = mkdtempSync(join(tmpdir(), 'sidecache-pgbouncer-'));
  writeFileSync(join(dir, 'pgbouncer.ini'), ini);
  writeFileSync(join(dir, 'userlist.txt'), userlist);
  const user = osUser();
  if (user !== undefined) for (const f of ['', 'pgbouncer.ini', 'userlist.txt']) chownSync(join(dir, f), user.uid, user.gid);
  // auth_file = userlist.txt is read relative to the working directory.
  const child: ChildProcess = spawn(PGBOUNCER, ['pgbouncer.ini'], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], ...user });
  let log = '';
  child.stderr!.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(() => log.includes('process up') || child.exitCode !== null, 'pgbouncer to start');
    if (child.exitCode !== null) throw new Error(`pgbouncer exited: ${log}`);
  } catch (err) {
    await stop();
    throw err;
  }
  return { port, stop };
}

/** The example's sidecache.yaml in front of port `upstream` (PgBouncer's, or the cluster's). */
async function startExampleSidecache(cluster: PgCluster, upstream: number, changes: [string, string][] = []): Promise<SidecacheServer> {
  let yaml = readFileSync(join(example, 'sidecache.yaml'), 'utf8');
  yaml = rewrite(yaml, 'pgbouncer:6433', `127.0.0.1:${upstream}`);
  yaml = rewrite(yaml, '127.0.0.1:6432', '127.0.0.1:0');
  yaml = rewrite(yaml, '127.0.0.1:9090', '127.0.0.1:0');
  yaml = rewrite(yaml, '${SIDECACHE_ADMIN_TOKEN}', 'token');
  for (const [from, to] of changes) yaml = rewrite(yaml, from, to);
  // A hit needs the plan, however loaded the machine: the catalog's answer, not a 100 ms race.
  return await startSidecache(yaml, { planWaitMs: 10_000 });
}

async function appClient(port: number): Promise<pg.Client> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'app', password: APP_PASSWORD, database: 'postgres' });
  await client.connect();
  return client;
}

describe.skipIf(unavailable !== undefined)('PgBouncer between sidecache and PostgreSQL (examples/pgbouncer)', () => {
  const cluster = useCluster({ auth: 'scram-sha-256' });
  let userlist = '';
  const clients: pg.Client[] = [];
  const connectVia = async (port: number) => {
    const client = await appClient(port);
    clients.push(client);
    return client;
  };
  /** Clients end before the sidecache and PgBouncer they talk to stop. */
  const endClients = async () => {
    for (const c of clients.splice(0)) await c.end().catch(() => undefined);
  };

  beforeAll(async () => {
    await cluster.admin(
      `CREATE ROLE app LOGIN PASSWORD '${APP_PASSWORD}';
       CREATE TABLE items (id int PRIMARY KEY, name text); INSERT INTO items VALUES (1, 'one'), (2, 'two');
       CREATE TABLE t (v text); INSERT INTO t VALUES ('public row');
       CREATE SCHEMA s2; CREATE TABLE s2.t (v text); INSERT INTO s2.t VALUES ('s2 row');
       GRANT USAGE ON SCHEMA s2 TO app; GRANT ALL ON items, t, s2.t TO app;`,
    );
    // The auth_file as the example makes it: the server's own SCRAM secrets.
    const results = await cluster.admin(readFileSync(join(example, 'userlist.sql'), 'utf8'));
    userlist = results.flatMap((r) => r.rows.map((row: { format: string }) => `${row.format}\n`)).join('');
    expect(userlist).toMatch(/^"app" "SCRAM-SHA-256\$/);
  });

  describe('pool_mode = session, as in the example', () => {
    let bouncer: Bouncer;
    let server: SidecacheServer;
    let port: number;
    beforeAll(async () => {
      bouncer = await startPgbouncer(cluster.port, userlist);
      server = await startExampleSidecache(cluster, bouncer.port);
      port = server.postgresListeners[0]!.address.port;
    });
    afterAll(async () => {
      await endClients();
      await server?.stop(100);
      await bouncer?.stop();
    });

    it('answers through PgBouncer with SCRAM, serves a repeat from the cache, and a write through sidecache invalidates', async () => {
      const via = await connectVia(port);
      const read = async () => (await via.query('SELECT name FROM items WHERE id = $1', [1])).rows[0].name;
      const before = await metric(server, 'sidecache_requests_total', HITS);
      expect(await read()).toBe('one');
      expect(await read()).toBe('one');
      expect(await metric(server, 'sidecache_requests_total', HITS)).toBe(before + 1);
      await via.query("UPDATE items SET name = 'uno' WHERE id = 1");
      expect(await read()).toBe('uno');
      // Another sidecache session gets the new value too: the entry is gone, not just this session's view.
      const other = await connectVia(port);
      expect((await other.query('SELECT name FROM items WHERE id = $1', [1])).rows[0].name).toBe('uno');
    });

    it("keeps each client's session: a SET holds for its client only, and reads follow it", async () => {
      const a = await connectVia(port);
      const b = await connectVia(port);
      await a.query('SET search_path = s2');
      expect((await a.query('SHOW search_path')).rows[0].search_path).toBe('s2');
      for (let i = 0; i < 2; i++) {
        expect((await b.query('SELECT v FROM t')).rows[0].v).toBe('public row');
        expect((await a.query('SELECT v FROM t')).rows[0].v).toBe('s2 row');
      }
      expect((await b.query('SHOW search_path')).rows[0].search_path).toBe('"$user", public');
    });

    it('a dedicated catalog identity (catalogUrl) through PgBouncer is asked too: its settings are sent after login, not as startup parameters', async () => {
      const catalogLike = new pg.Client({
        host: '127.0.0.1',
        port: bouncer.port,
        user: 'app',
        password: APP_PASSWORD,
        database: 'postgres',
        statement_timeout: 5_000,
      });
      await expect(catalogLike.connect()).rejects.toThrow(/unsupported startup parameter: statement_timeout/);
      await catalogLike.end().catch(() => undefined);
      const upstreamLine = `    upstream: "postgres://127.0.0.1:${bouncer.port}?sslmode=prefer"\n`;
      const throughBouncer = await startExampleSidecache(cluster, bouncer.port, [
        [upstreamLine, `${upstreamLine}    catalogUrl: "postgres://app:${APP_PASSWORD}@127.0.0.1:${bouncer.port}"\n`],
      ]);
      try {
        const via = await appClient(throughBouncer.postgresListeners[0]!.address.port);
        try {
          for (let i = 0; i < 2; i++) expect((await via.query('SELECT name FROM items WHERE id = $1', [2])).rows[0].name).toBe('two');
        } finally {
          await via.end();
        }
        expect(await metric(throughBouncer, 'sidecache_requests_total', HITS)).toBe(1);
        expect(await metric(throughBouncer, 'sidecache_postgres_catalog_errors_total', { listener: 'main' })).toBe(0);
      } finally {
        await throughBouncer.stop(100);
      }
    });
  });

  describe.each(['transaction', 'statement'])('pool_mode = %s behind sidecache (not supported)', (mode) => {
    let bouncer: Bouncer;
    let server: SidecacheServer;
    let port: number;
    beforeAll(async () => {
      // One server connection, so which one a statement runs on is decided, not raced.
      bouncer = await startPgbouncer(cluster.port, userlist, [
        ['pool_mode = session', `pool_mode = ${mode}`],
        ['default_pool_size = 20', 'default_pool_size = 1'],
      ]);
      server = await startExampleSidecache(cluster, bouncer.port);
      port = server.postgresListeners[0]!.address.port;
    });
    afterAll(async () => {
      await endClients();
      await server?.stop(100);
      await bouncer?.stop();
    });

    it("caches an answer made under another client's SET and keeps serving it after the server has moved on", async () => {
      const a = await connectVia(port);
      const b = await connectVia(port);
      // A's SET stays on the server connection when PgBouncer gives it to B (no server_reset_query outside session mode).
      await a.query('SET search_path = s2');
      // B has set nothing, so sidecache keys this under the default search_path; the server answered with s2's.
      expect((await b.query('SELECT v FROM t')).rows[0].v).toBe('s2 row');
      await a.query('RESET search_path');
      const direct = await connectVia(bouncer.port);
      expect((await direct.query('SELECT v FROM t')).rows[0].v).toBe('public row');
      // A new client that set nothing: PostgreSQL would say 'public row'; sidecache answers from its cache.
      const c = await connectVia(port);
      const before = await metric(server, 'sidecache_requests_total', HITS);
      expect((await c.query('SELECT v FROM t')).rows[0].v).toBe('s2 row');
      expect(await metric(server, 'sidecache_requests_total', HITS)).toBe(before + 1);
    });
  });

  describe('PgBouncer in front of sidecache: sidecache sees its pooled sessions', () => {
    const CONNECTIONS = { protocol: 'postgres', listener: 'main' };
    /** app → PgBouncer (the example's, with `changes`, one server connection) → sidecache → the cluster. */
    async function inFront(changes: [string, string][], fn: (bouncer: Bouncer, server: SidecacheServer) => Promise<void>): Promise<void> {
      const server = await startExampleSidecache(cluster, cluster.port);
      const bouncer = await startPgbouncer(server.postgresListeners[0]!.address.port, userlist, [
        ['default_pool_size = 20', 'default_pool_size = 1'],
        ...changes,
      ]);
      try {
        await fn(bouncer, server);
      } finally {
        await endClients();
        await bouncer.stop();
        await server.stop(100);
      }
    }
    const hits = (server: SidecacheServer) => metric(server, 'sidecache_requests_total', HITS);
    const readTwice = async (client: pg.Client) => {
      for (let i = 0; i < 2; i++) expect((await client.query('SELECT name FROM items WHERE id = $1', [2])).rows[0].name).toBe('two');
    };

    it("session mode: PgBouncer's DISCARD ALL on release ends one client's taint before the next client gets the session", async () => {
      await inFront([], async (bouncer, server) => {
        const first = await connectVia(bouncer.port);
        // DO taints the sidecache session (sidecache cannot see what it did): no hits for it.
        await first.query('DO $$ BEGIN NULL; END $$');
        await readTwice(first);
        expect(await hits(server)).toBe(0);
        await endClients();
        const next = await connectVia(bouncer.port);
        await readTwice(next);
        expect(await hits(server)).toBe(1);
        expect(await metric(server, 'sidecache_client_connections', CONNECTIONS)).toBe(1);
      });
    });

    it("transaction mode: several apps share one sidecache session, and one app's taint costs the others their hits", async () => {
      await inFront([['pool_mode = session', 'pool_mode = transaction']], async (bouncer, server) => {
        const [one, two, three] = [await connectVia(bouncer.port), await connectVia(bouncer.port), await connectVia(bouncer.port)];
        await one.query('DO $$ BEGIN NULL; END $$');
        await readTwice(two);
        await readTwice(three);
        expect(await hits(server)).toBe(0);
        expect(await metric(server, 'sidecache_client_connections', CONNECTIONS)).toBe(1);
      });
    });
  });
});
