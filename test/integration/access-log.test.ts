/** Issue 18 point 3: `log.access`, one JSON line per answered request, with nothing secret in it. */
import { afterEach, describe, expect, it } from 'vitest';
import { startOrigin } from '../helpers/origin.js';
import { connect, PG, pgUnreachable, unique } from '../helpers/pg.js';
import { httpListenerYaml, startSidecache } from '../helpers/sidecache.js';
import { waitFor } from '../helpers/wait.js';

const pgDown = await pgUnreachable();
const SECRET = 'sekr3t-value-issue18';
const stops: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

/** A sink that keeps the lines written to it. */
function lines(): { sink: (text: string) => void; read: () => Record<string, unknown>[]; text: () => string } {
  const written: string[] = [];
  return { sink: (t) => written.push(t), read: () => written.map((t) => JSON.parse(t) as Record<string, unknown>), text: () => written.join('') };
}

describe('access log', () => {
  it('HTTP: one line per request with listener, method, path without query, status, result and duration; no query string', async () => {
    const origin = await startOrigin((req, res) => {
      res.writeHead(req.url!.startsWith('/missing') ? 404 : 200, { 'cache-control': 'max-age=60' });
      res.end(`body ${SECRET}`);
    });
    stops.push(() => origin.close());
    const log = lines();
    const server = await startSidecache(`log: { access: true }\n${httpListenerYaml(origin.url)}`, { accessSink: log.sink });
    stops.push(() => server.stop(100));
    const base = server.httpListeners[0]!.url;
    await (await fetch(`${base}/users/1?token=${SECRET}`, { headers: { authorization: `Bearer ${SECRET}`, cookie: `s=${SECRET}` } })).text();
    await (await fetch(`${base}/users/2?token=${SECRET}`)).text();
    await (await fetch(`${base}/users/2?token=${SECRET}`)).text();
    await (await fetch(`${base}/missing?q=${SECRET}`)).text();
    const read = log.read();
    expect(read.map((l) => [l.listener, l.protocol, l.method, l.path, l.status, l.result])).toEqual([
      ['api', 'http', 'GET', '/users/1', 200, 'miss'],
      ['api', 'http', 'GET', '/users/2', 200, 'miss'],
      ['api', 'http', 'GET', '/users/2', 200, 'hit'],
      ['api', 'http', 'GET', '/missing', 404, 'miss'],
    ]);
    for (const line of read) {
      expect(line.msg).toBe('access');
      expect(typeof line.durationMs).toBe('number');
    }
    expect(log.text()).not.toContain(SECRET);
  });

  it('is off by default: nothing is written', async () => {
    const origin = await startOrigin((_req, res) => res.end('x'));
    stops.push(() => origin.close());
    const log = lines();
    const server = await startSidecache(httpListenerYaml(origin.url), { accessSink: log.sink });
    stops.push(() => server.stop(100));
    await (await fetch(`${server.httpListeners[0]!.url}/a`)).text();
    expect(log.read()).toEqual([]);
  });

  it.skipIf(pgDown !== undefined)('PostgreSQL: database, user, command, SQLSTATE and result; no SQL text, literal or bind value', async () => {
    const table = unique('access');
    const direct = await connect(undefined);
    stops.push(async () => {
      await direct.query(`DROP TABLE IF EXISTS ${table}`);
      await direct.end();
    });
    await direct.query(`CREATE TABLE ${table} (id int, v text); INSERT INTO ${table} VALUES (1, 'a')`);
    const log = lines();
    const server = await startSidecache(
      `log: { access: true }\npostgres:\n  - { name: main, listen: "127.0.0.1:0", upstream: "postgres://${PG.host}:${PG.port}?sslmode=disable" }\n`,
      {
        accessSink: log.sink,
        planWaitMs: 10_000,
      },
    );
    stops.push(() => server.stop(100));
    const client = await connect(server.postgresListeners[0]!.address.port);
    stops.push(() => client.end());
    await client.query(`SELECT v FROM ${table} WHERE v <> '${SECRET}'`);
    await client.query(`SELECT v FROM ${table} WHERE v <> $1`, [SECRET]);
    await client.query(`SELECT v FROM ${table} WHERE v <> $1`, [SECRET]);
    await expect(client.query(`SELECT '${SECRET}' FROM no_such_table_issue18`)).rejects.toThrow(/does not exist/);
    // node-postgres rejects at the ErrorResponse; the line is written at its ReadyForQuery.
    await waitFor(() => log.read().some((l) => l.sqlstate === '42P01'), 'the access line of the failed statement');
    const read = log.read().filter((l) => l.command !== undefined || l.sqlstate !== undefined);
    expect(read.map((l) => [l.listener, l.database, l.user, l.command, l.sqlstate, l.result])).toEqual([
      ['main', PG.database, PG.user, 'SELECT', '00000', 'miss'],
      ['main', PG.database, PG.user, 'SELECT', '00000', 'miss'],
      ['main', PG.database, PG.user, 'SELECT', undefined, 'hit'],
      ['main', PG.database, PG.user, 'SELECT', '42P01', 'bypass'],
    ]);
    expect(log.text()).not.toContain(SECRET);
    expect(log.text()).not.toContain(table);
  });
});
