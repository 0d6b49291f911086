/**
 * Keys and counting at the edges of a session: startup parameters that differ only by a
 * separator, a Terminate that comes with the startup packet, and which requests count as bypass.
 */
import type net from 'node:net';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { query, readMessages, startup, terminate } from '../../helpers/pg-bytes.js';
import { connect, PG, pgUnreachable, rawSocket, usePgFixture } from '../../helpers/pg.js';
import { metric } from '../../helpers/sidecache.js';
import { exchange, rawSession } from './raw-session.js';

const unreachable = await pgUnreachable();

/** Everything the socket receives until it closes. */
function untilClose(socket: net.Socket): Promise<Buffer> {
  return new Promise((resolve) => {
    let all = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => (all = Buffer.concat([all, chunk])));
    socket.on('error', () => undefined);
    socket.once('close', () => resolve(all));
  });
}

describe.skipIf(unreachable !== undefined)('postgres listener: keys and counting', () => {
  const f = usePgFixture('keys', (t) => `CREATE TABLE ${t} (id int PRIMARY KEY, v text); INSERT INTO ${t} VALUES (1, 'one')`);

  it('a Terminate in the same write as the startup packet, before or after it, is a clean close (10)', async () => {
    // node-postgres `connect(); end()` queues Terminate before the startup packet, in one write.
    for (const order of ['before', 'after']) {
      const socket = await rawSocket(f.port);
      const closed = untilClose(socket);
      const hello = startup({ user: PG.user, database: PG.database });
      socket.write(order === 'before' ? Buffer.concat([terminate(), hello]) : Buffer.concat([hello, terminate()]));
      const answer = readMessages(await closed);
      expect(answer.filter((m) => m.code === 'E').map((m) => m.body.toString('latin1'))).toEqual([]);
    }
    const client = new pg.Client({ ...PG, host: '127.0.0.1', port: f.port });
    let failed: unknown;
    client.connect().catch((err: unknown) => (failed = err));
    await client.end();
    expect(failed).toBeUndefined();
  });

  it('startup parameters that differ only by a separator character get different keys (9)', async () => {
    const { table } = f;
    const run = async (params: Record<string, string>) => {
      const socket = await rawSession(f.port, params);
      const answer = await exchange(socket, query(`SELECT v FROM ${table} WHERE id = 1`), 1);
      socket.destroy();
      return readMessages(answer).find((m) => m.code === 'E') === undefined;
    };
    // With search_path pointing nowhere the table is unknown: the answer is an error, never cached rows.
    expect(await run({ 'myapp.a': 'v', search_path: 'nowhere' })).toBe(false);
    expect(await run({ 'myapp.a': 'v\u0001search_path=nowhere' })).toBe(true);
    expect(await run({ 'myapp.a': 'v', search_path: 'nowhere' })).toBe(false);
  });

  it('what the listener decides not to cache counts as bypass; a cacheable statement that went upstream as miss (11)', async () => {
    const count = (result: string) => metric(f.server, 'sidecache_requests_total', { protocol: 'postgres', listener: 'main', result });
    // Plans worked out beforehand: a first use that waits too long for its plan counts as miss.
    const statements = ['SELECT now()', 'SELECT now(), $1::int', `SELECT v FROM ${f.table} WHERE id = 1 AND v = 'one'`];
    for (const sql of statements) await fetch(`${f.server.adminUrl}/cache/explain?listener=main&database=${PG.database}&sql=${encodeURIComponent(sql)}`);
    const c: pg.Client = await connect(f.port);
    try {
      const [miss0, bypass0] = [await count('miss'), await count('bypass')];
      await c.query('SELECT now()');
      await c.query({ text: 'SELECT now(), $1::int', values: [1] });
      await c.query(`UPDATE ${f.table} SET v = 'one' WHERE id = 1`);
      expect(await count('bypass')).toBe(bypass0 + 3);
      expect(await count('miss')).toBe(miss0);
      await c.query(`SELECT v FROM ${f.table} WHERE id = 1 AND v = 'one'`);
      expect(await count('miss')).toBe(miss0 + 1);
    } finally {
      await c.end();
    }
  });
});
