import net from 'node:net';
import { afterAll, beforeAll, inject } from 'vitest';
import pg from 'pg';
import './pg-provided.js';
import { startSidecache } from './sidecache.js';
import type { SidecacheServer } from '../../src/server.js';

const provided = inject('pgServer');

/**
 * The real PostgreSQL the tests use, the one place every test takes it from: the server of the
 * project's run when its globalSetup provides one (the `pg18` project of vitest.config.ts), else
 * PGHOST/PGPORT, default the machine's at 127.0.0.1:5432.
 */
export const PG = {
  host: provided?.host ?? process.env.PGHOST ?? '127.0.0.1',
  port: provided?.port ?? Number(process.env.PGPORT ?? 5432),
  user: process.env.PGUSER ?? 'postgres',
  database: process.env.PGDATABASE ?? 'test',
};

/** Whether PostgreSQL answers; tests skip loudly (with this reason) when it does not. */
export async function pgUnreachable(): Promise<string | undefined> {
  const client = new pg.Client({ ...PG, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.end();
    return undefined;
  } catch (err) {
    const reason = `SKIPPED: PostgreSQL at ${PG.host}:${PG.port} is unreachable (${(err as Error).message})`;
    console.warn(reason);
    return reason;
  }
}

let counter = 0;
/** A table or role name no other test uses. */
export function unique(prefix: string): string {
  return `${prefix}_${process.pid}_${Date.now().toString(36)}_${counter++}`;
}

/** A sidecache with one postgres listener `main` in front of PG; `extra` is YAML for more listener keys. */
export async function startPgSidecache(extra = ''): Promise<{ server: SidecacheServer; port: number }> {
  const server = await startSidecache(
    `postgres:\n  - name: main\n    listen: "127.0.0.1:0"\n    upstream: "postgres://${PG.host}:${PG.port}?sslmode=disable"\n${extra}`,
    // Tests that expect a hit need the plan, however loaded the machine: the catalog's answer, not a 100 ms race.
    { planWaitMs: 10_000 },
  );
  return { server, port: server.postgresListeners[0]!.address.port };
}

export async function connect(port: number | undefined, options: Partial<pg.ClientConfig> = {}): Promise<pg.Client> {
  const client = new pg.Client({ ...PG, ...(port !== undefined && { host: '127.0.0.1', port }), ...options });
  await client.connect();
  return client;
}

/** A raw socket speaking the wire protocol, for byte-level tests: to sidecache on loopback, or to `host` (PG.host for the server itself). */
export function rawSocket(port: number, host = '127.0.0.1'): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, host, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** A sidecache in front of PostgreSQL, a direct connection, and one table of the block's own. */
export interface PgFixture {
  server: SidecacheServer;
  port: number;
  direct: pg.Client;
  table: string;
}

/**
 * Starts the fixture before the block's tests and tears it down after them (table dropped,
 * connections closed). `setup` returns the SQL that creates and fills `table`.
 */
export function usePgFixture(prefix: string, setup: (table: string) => string, extra = ''): PgFixture {
  const fixture = { table: unique(prefix) } as PgFixture;
  beforeAll(async () => {
    Object.assign(fixture, await startPgSidecache(extra));
    fixture.direct = await connect(undefined);
    await fixture.direct.query(setup(fixture.table));
  });
  afterAll(async () => {
    await fixture.direct?.query(`DROP TABLE IF EXISTS ${fixture.table}`);
    await fixture.direct?.end();
    await fixture.server?.stop(100);
  });
  return fixture;
}

/** Runs `fn` against a sidecache of its own, stopped afterwards whatever happens. */
export async function withPgSidecache(fn: (port: number, server: SidecacheServer) => Promise<void>, extra = ''): Promise<void> {
  const { server, port } = await startPgSidecache(extra);
  try {
    await fn(port, server);
  } finally {
    await server.stop(100);
  }
}

/** A table of one name in `public` and in a schema of its own, with different rows: what search_path tests read. */
export function shadowedTable(prefix: string): { t: string; s2: string; create: string; drop: string } {
  const t = unique(`${prefix}_t`);
  const s2 = unique(`${prefix}_s2`);
  return {
    t,
    s2,
    create: `CREATE TABLE public.${t} (v text); INSERT INTO public.${t} VALUES ('public row');
      CREATE SCHEMA ${s2}; CREATE TABLE ${s2}.${t} (v text); INSERT INTO ${s2}.${t} VALUES ('s2 row');`,
    drop: `DROP TABLE public.${t}; DROP SCHEMA ${s2} CASCADE;`,
  };
}
