/**
 * Password authentication through sidecache, against throwaway clusters whose pg_hba asks for
 * SCRAM-SHA-256 or md5 on 127.0.0.1: the exchange is relayed verbatim, so the client's password
 * is checked by PostgreSQL and its refusal reaches the client as PostgreSQL sent it.
 * SCRAM channel binding (tls-server-end-point) binds to the certificate of the connection the
 * client sees: through sidecache that is sidecache's, not the server's.
 * (https://www.postgresql.org/docs/current/sasl-authentication.html#SASL-SCRAM-SHA-256)
 */
import { execFile, execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import pg from 'pg';
import { clusterUnavailable, type PgCluster, useCluster } from '../../helpers/pg-cluster.js';
import { metric, startSidecache } from '../../helpers/sidecache.js';
import { makePki } from '../../helpers/tls.js';
import { rawSocket, unique } from '../../helpers/pg.js';
import { startup } from '../../helpers/pg-bytes.js';
import { waitFor } from '../../helpers/wait.js';
import type { SidecacheServer } from '../../../src/server.js';

const unavailable = clusterUnavailable();
const noPsql = (() => {
  try {
    execFileSync('psql', ['--version'], { stdio: 'pipe' });
    return undefined;
  } catch {
    // Without psql, the libpq cases cannot run; the node-postgres ones still do.
    const reason = 'SKIPPED: psql is not installed: libpq channel_binding cases do not run';
    console.warn(reason);
    return reason;
  }
})();

/** A sidecache in front of `cluster` with the upstream's sslmode, and TLS to clients when `tls`; the upstream URL has no user or password. */
async function withSidecache(cluster: PgCluster, sslmode: string, tls: boolean, fn: (port: number, server: SidecacheServer) => Promise<void>): Promise<void> {
  const pki = tls ? makePki() : undefined;
  const server = await startSidecache(
    `postgres:\n  - name: main\n    listen: "127.0.0.1:0"\n    upstream: "postgres://127.0.0.1:${cluster.port}/postgres?sslmode=${sslmode}"\n` +
      (pki === undefined ? '' : `    tls: { cert: "${join(pki.dir, 'server.pem')}", key: "${join(pki.dir, 'server.key')}" }\n`),
    { planWaitMs: 10_000 },
  );
  try {
    await fn(server.postgresListeners[0]!.address.port, server);
  } finally {
    await server.stop(100);
    if (pki !== undefined) rmSync(pki.dir, { recursive: true, force: true });
  }
}

async function nodeClient(port: number, password: string, options: Partial<pg.ClientConfig> = {}): Promise<pg.Client> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', password, ...options });
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw err;
  }
  return client;
}

const run = promisify(execFile);

/** psql (libpq) through sidecache: its output, or its error message. */
async function psql(port: number, password: string, conninfo: string): Promise<string> {
  try {
    const { stdout } = await run('psql', [`host=127.0.0.1 port=${port} user=postgres dbname=postgres connect_timeout=10 ${conninfo}`, '-XAtc', 'SELECT 1'], {
      env: { PATH: process.env.PATH, PGPASSWORD: password },
    });
    return stdout.trim();
  } catch (err) {
    return ((err as { stderr?: string }).stderr ?? (err as Error).message).trim();
  }
}

/**
 * Right password: reads are cached with nothing but `listen` and `upstream` set (the catalog is
 * asked in band, over the client's own session, so it needs no password of its own). Wrong:
 * PostgreSQL's 28P01.
 */
function passwordCases(cluster: PgCluster, stored: RegExp, sslmodes: string[]): void {
  it('stores the password as the method asks', async () => {
    const [result] = await cluster.admin("SELECT rolpassword FROM pg_authid WHERE rolname = 'postgres'");
    expect(result!.rows[0].rolpassword).toMatch(stored);
  });

  for (const sslmode of sslmodes) {
    it(`a client with the right password gets hits, the upstream URL holding no password (sslmode=${sslmode})`, async () => {
      const table = unique('auth');
      await cluster.admin(`CREATE TABLE ${table} (id int PRIMARY KEY, v int); INSERT INTO ${table} VALUES (1, 1)`);
      await withSidecache(cluster, sslmode, false, async (port, server) => {
        const client = await nodeClient(port, cluster.password);
        const hits = () => metric(server, 'sidecache_requests_total', { protocol: 'postgres', listener: 'main', result: 'hit' });
        try {
          for (let i = 0; i < 3; i++) expect((await client.query(`SELECT v FROM ${table} WHERE id = 1`)).rows).toEqual([{ v: 1 }]);
          expect(await hits()).toBe(2);
          // A write through sidecache reaches the entry: the next read is the server's.
          await client.query(`UPDATE ${table} SET v = 2 WHERE id = 1`);
          expect((await client.query(`SELECT v FROM ${table} WHERE id = 1`)).rows).toEqual([{ v: 2 }]);
          expect((await client.query({ text: `SELECT v FROM ${table} WHERE id = $1`, values: [1] })).rows).toEqual([{ v: 2 }]);
          expect((await client.query({ text: `SELECT v FROM ${table} WHERE id = $1`, values: [1] })).rows).toEqual([{ v: 2 }]);
          expect(await hits()).toBe(3);
          expect(await metric(server, 'sidecache_postgres_catalog_errors_total', { listener: 'main' })).toBe(0);
        } finally {
          await client.end();
        }
      });
    });
  }

  it("a client with a wrong password gets PostgreSQL's own 28P01", async () => {
    await withSidecache(cluster, 'disable', false, async (port) => {
      await expect(nodeClient(port, 'wrong')).rejects.toMatchObject({
        code: '28P01',
        severity: 'FATAL',
        message: 'password authentication failed for user "postgres"',
      });
    });
  });

  it('a client that leaves during authentication leaves no session behind', async () => {
    await withSidecache(cluster, 'disable', false, async (port, server) => {
      const authenticating = async () =>
        Number(
          (await cluster.admin(`SELECT count(*) AS n FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()`))[0]!.rows[0].n,
        );
      const socket = await rawSocket(port);
      const asked = new Promise<Buffer>((resolve) => socket.once('data', resolve));
      socket.write(startup({ user: 'postgres', database: 'postgres', application_name: 'leaves-during-auth' }));
      // The server's password request (AuthenticationSASL or MD5Password): the upstream session waits for an answer.
      expect((await asked)[0]).toBe('R'.charCodeAt(0));
      expect(server.postgresListeners[0]!.upstreamConnections).toBe(1);
      socket.destroy();
      await waitFor(() => server.postgresListeners[0]!.upstreamConnections === 0, 'sidecache to close the upstream connection');
      await waitFor(async () => (await authenticating()) === 0, 'the server to end the session');
    });
  });
}

describe.skipIf(unavailable !== undefined)('postgres listener: SCRAM-SHA-256 upstream', () => {
  const cluster = useCluster({ auth: 'scram-sha-256', ssl: true });
  passwordCases(cluster, /^SCRAM-SHA-256\$/, ['disable', 'require']);

  it("a client that binds the channel through a TLS-terminating sidecache to a TLS upstream is refused: the channel it binds is not the server's", async () => {
    await withSidecache(cluster, 'require', true, async (port) => {
      // node-postgres binds whenever the server offers SCRAM-SHA-256-PLUS over TLS.
      await expect(nodeClient(port, cluster.password, { ssl: { rejectUnauthorized: false }, enableChannelBinding: true })).rejects.toMatchObject({
        severity: 'FATAL',
        message: 'SCRAM channel binding check failed',
      });
      if (noPsql === undefined)
        expect(await psql(port, cluster.password, 'sslmode=require channel_binding=require')).toMatch(/FATAL: {2}SCRAM channel binding check failed$/);
      // Not binding works: node-postgres' default, libpq's channel_binding=disable.
      const plain = await nodeClient(port, cluster.password, { ssl: { rejectUnauthorized: false } });
      expect((await plain.query('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
      await plain.end();
      if (noPsql === undefined) expect(await psql(port, cluster.password, 'sslmode=require channel_binding=disable')).toBe('1');
    });
  });

  it('to a plain upstream, where the server offers no channel binding: clients that prefer it connect; libpq refuses channel_binding=require itself', async () => {
    await withSidecache(cluster, 'disable', true, async (port) => {
      const client = await nodeClient(port, cluster.password, { ssl: { rejectUnauthorized: false }, enableChannelBinding: true });
      expect((await client.query('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
      await client.end();
      if (noPsql !== undefined) return;
      expect(await psql(port, cluster.password, 'sslmode=require channel_binding=prefer')).toBe('1');
      expect(await psql(port, cluster.password, 'sslmode=require channel_binding=require')).toMatch(
        /channel binding is required, but server did not offer an authentication method that supports channel binding$/,
      );
    });
  });

  it.skipIf(noPsql !== undefined)(
    "to a TLS upstream, a libpq client without TLS to sidecache logs in: the server's channel-bound offer is not relayed to it",
    async () => {
      await withSidecache(cluster, 'require', false, async (port) => {
        for (const binding of ['disable', 'prefer']) expect(await psql(port, cluster.password, `sslmode=prefer channel_binding=${binding}`), binding).toBe('1');
      });
    },
  );

  it.skipIf(noPsql !== undefined)(
    "to a TLS upstream, a libpq client on TLS to sidecache must not bind (channel_binding=disable): the channel it would bind is sidecache's",
    async () => {
      await withSidecache(cluster, 'require', true, async (port) => {
        expect(await psql(port, cluster.password, 'sslmode=require')).toMatch(/FATAL: {2}SCRAM channel binding check failed$/);
        expect(await psql(port, cluster.password, 'sslmode=require channel_binding=disable')).toBe('1');
      });
    },
  );
});

describe.skipIf(unavailable !== undefined)('postgres listener: md5 upstream', () => {
  const cluster = useCluster({ auth: 'md5' });
  passwordCases(cluster, /^md5[0-9a-f]{32}$/, ['disable']);
});
