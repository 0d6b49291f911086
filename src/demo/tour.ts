import pg from 'pg';
import { parseIntoClientConfig } from 'pg-connection-string';
import type { SidecacheServer } from '../server.js';

type Print = (line: string) => void;

interface Timed {
  ms: number;
  status: string;
  body: string;
}

async function get(url: string): Promise<Timed> {
  const started = performance.now();
  const res = await fetch(url);
  const body = await res.text();
  return { ms: performance.now() - started, status: res.headers.get('cache-status') ?? '', body };
}

async function query(client: pg.Client, sql: string): Promise<{ ms: number; row: unknown }> {
  const started = performance.now();
  const { rows } = await client.query(sql);
  return { ms: performance.now() - started, row: rows[0] };
}

const ms = (n: number): string => `${n.toFixed(2)} ms`;

/** Hits of the PostgreSQL listeners so far, from sidecache's own metrics. */
async function postgresHits(server: SidecacheServer): Promise<number> {
  const metric = server.registry.getSingleMetric('sidecache_requests_total');
  const values = metric === undefined ? [] : (await metric.get()).values;
  return values.filter((v) => v.labels.protocol === 'postgres' && v.labels.result === 'hit').reduce((sum, v) => sum + v.value, 0);
}

/** A short scripted tour: MISS → HIT, a write in the database → invalidation → MISS → HIT, the hit ratio. */
export async function tour(server: SidecacheServer, database: { url: string; client(): pg.Client }, print: Print): Promise<void> {
  const http = server.httpListeners[0]!.url;
  const product = `${http}/products/7`;
  // One request first, so connection set-up does not count in the timings below.
  await get(`${http}/health`);
  print('\n1. HTTP through sidecache');
  const miss = await get(product);
  print(`   GET /products/7   ${ms(miss.ms).padStart(10)}   Cache-Status: ${miss.status}`);
  const hit = await get(product);
  print(`   GET /products/7   ${ms(hit.ms).padStart(10)}   Cache-Status: ${hit.status}   (${(miss.ms / hit.ms).toFixed(0)}x faster)`);

  print('\n2. SQL through sidecache');
  const via = new pg.Client({ ...parseIntoClientConfig(database.url), port: server.postgresListeners[0]!.address.port });
  await via.connect();
  // What sidecache did with each statement, from its own counters (hit, or went upstream).
  const answered = async (sql: string): Promise<{ ms: number; row: unknown; how: string }> => {
    const before = await postgresHits(server);
    const q = await query(via, sql);
    return { ...q, how: (await postgresHits(server)) > before ? 'hit' : 'from PostgreSQL' };
  };
  try {
    // One statement first, so the session's set-up (and its first catalog questions) does not count below.
    await via.query('SELECT 1');
    const sql = 'SELECT count(*) AS products, round(avg(price), 2) AS average_price FROM products';
    // A statement's first use waits at most planWaitMs for the catalog: on a slow machine it may take another round to be stored.
    for (let i = 0; i < 4; i++) {
      const q = await answered(sql);
      print(`   ${sql}   ${ms(q.ms)}   (${q.how}) ${JSON.stringify(q.row)}`);
      if (q.how === 'hit') break;
    }

    print('\n3. A write made directly in the database (not through sidecache)');
    const direct = database.client();
    await direct.connect();
    await direct.query('UPDATE products SET price = price + 1 WHERE id = 7');
    await direct.end();
    print("   UPDATE products SET price = price + 1 WHERE id = 7   → trigger → NOTIFY sidecache, 'products'");
    const deadline = Date.now() + 2000;
    let after = await get(product);
    while (!after.status.includes('miss') && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
      after = await get(product);
    }
    print(`   GET /products/7   ${ms(after.ms).padStart(10)}   Cache-Status: ${after.status}   ${after.body}`);
    const again = await get(product);
    print(`   GET /products/7   ${ms(again.ms).padStart(10)}   Cache-Status: ${again.status}`);
    const q3 = await answered(sql);
    print(`   ${sql}   ${ms(q3.ms)}   (after the write: ${q3.how}) ${JSON.stringify(q3.row)}`);
  } finally {
    await via.end();
  }

  print('\n4. From /metrics');
  const text = await (await fetch(`${server.adminUrl}/metrics`)).text();
  for (const protocol of ['http', 'postgres']) {
    const count = (result: string): number => {
      const match = new RegExp(`sidecache_requests_total\\{protocol="${protocol}",listener="[^"]+",result="${result}"\\} (\\d+)`).exec(text);
      return match === null ? 0 : Number(match[1]);
    };
    const hits = count('hit');
    const total = hits + count('miss') + count('stale');
    print(`   ${protocol.padEnd(8)} hit ratio ${total === 0 ? '-' : ((hits / total) * 100).toFixed(0) + '%'} (${hits} of ${total})`);
  }
}
