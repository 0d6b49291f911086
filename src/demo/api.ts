import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';

/** Work a real API does per request (rendering, calls to other services), simulated. */
const WORK_MS = 25;

/**
 * The demo's example API over the demo database: GET /products/:id and GET /products as JSON,
 * cacheable for a minute and tagged by Surrogate-Key; PUT /products/:id {"price": …} writes.
 */
export async function startDemoApi(databaseUrl: string): Promise<{ url: string; close(): Promise<void> }> {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
  // Idle connections break when the demo's database stops (Ctrl-C reaches it too): expected, not fatal.
  pool.on('error', () => undefined);
  const server = http.createServer((req, res) => {
    handle(pool, req, res).catch((err: Error) => {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`${err.message}\n`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await pool.end();
    },
  };
}

async function handle(pool: pg.Pool, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const match = /^\/products(?:\/(\d+))?$/.exec(req.url ?? '');
  if (req.url === '/health') return send(res, 200, { ok: true }, 'no-store');
  if (match === null) return send(res, 404, { error: 'not found' }, 'no-store');
  const id = match[1] === undefined ? undefined : Number(match[1]);
  if (req.method === 'PUT' && id !== undefined) {
    const body = JSON.parse(await readBody(req)) as { price: number };
    await pool.query('UPDATE products SET price = $1 WHERE id = $2', [body.price, id]);
    return send(res, 200, { updated: id }, 'no-store');
  }
  await new Promise((r) => setTimeout(r, WORK_MS));
  const { rows } =
    id === undefined
      ? await pool.query('SELECT id, name, price FROM products ORDER BY id')
      : await pool.query('SELECT id, name, price FROM products WHERE id = $1', [id]);
  if (id !== undefined && rows.length === 0) return send(res, 404, { error: 'no such product' }, 'no-store');
  // table:products is the tag a write to the table invalidates (the database's NOTIFY trigger says "products").
  res.setHeader('surrogate-key', id === undefined ? 'table:products' : `table:products product:${id}`);
  send(res, 200, id === undefined ? rows : rows[0], 'public, max-age=60');
}

function send(res: http.ServerResponse, status: number, body: unknown, cacheControl: string): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': cacheControl });
  res.end(text);
}

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
