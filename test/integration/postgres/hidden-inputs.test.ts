/**
 * Inputs the statement text does not show: a write can run a user trigger that changes the session
 * (set_config), and a Bind parameter can read the clock (`now` bound to a timestamptz).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import type { SidecacheServer } from '../../../src/server.js';
import { connect, pgUnreachable, startPgSidecache, unique, shadowedTable } from '../../helpers/pg.js';
import { metric } from '../../helpers/sidecache.js';
import { waitFor } from '../../helpers/wait.js';
import { bind, execute, firstColumn, i16, i32, message, readMessages, sync } from '../../helpers/pg-bytes.js';
import { exchange, rawSession } from './raw-session.js';

const unreachable = await pgUnreachable();

describe.skipIf(unreachable !== undefined)('postgres listener: writes that run triggers', () => {
  let server: SidecacheServer;
  let port: number;
  let direct: pg.Client;
  const { t, s2, create: createShadowed, drop: dropShadowed } = shadowedTable('sp');
  const log = unique('log');
  const fn = unique('fn');

  beforeAll(async () => {
    ({ server, port } = await startPgSidecache());
    direct = await connect(undefined);
    await direct.query(`
      ${createShadowed}
      CREATE TABLE ${log} (id int);
      CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM set_config('search_path', '${s2}', false); RETURN NEW; END $$;
      CREATE TRIGGER ${fn} BEFORE INSERT ON ${log} FOR EACH ROW EXECUTE FUNCTION ${fn}();`);
  });
  afterAll(async () => {
    await server?.stop(100);
    await direct?.query(`${dropShadowed} DROP TABLE ${log}; DROP FUNCTION ${fn}()`);
    await direct?.end();
  });

  it('a write whose trigger calls set_config taints the session: its next read is the server answer', async () => {
    if (unreachable !== undefined) console.warn(`SKIPPED: ${unreachable}`);
    const other = await connect(port);
    const session = await connect(port);
    try {
      // Another session fills the entry for the default search_path.
      expect((await other.query(`SELECT v FROM ${t}`)).rows).toEqual([{ v: 'public row' }]);
      expect((await session.query(`SELECT v FROM ${t}`)).rows).toEqual([{ v: 'public row' }]);
      await session.query(`INSERT INTO ${log} VALUES (1)`);
      // PostgreSQL now reads s2 for this session (the trigger changed its search_path).
      expect((await session.query('SHOW search_path')).rows).toEqual([{ search_path: s2 }]);
      expect((await session.query(`SELECT v FROM ${t}`)).rows).toEqual([{ v: 's2 row' }]);
      // Other sessions are unaffected.
      expect((await other.query(`SELECT v FROM ${t}`)).rows).toEqual([{ v: 'public row' }]);
    } finally {
      await other.end();
      await session.end();
    }
  });
});

describe.skipIf(unreachable !== undefined)('postgres listener: bind parameters that read the clock', () => {
  it("a text parameter 'now', 'today' or 'tomorrow' bound to a date/time parameter is never answered from the cache", async () => {
    const { server, port } = await startPgSidecache();
    const client = await connect(port);
    try {
      const hits = () => metric(server, 'sidecache_requests_total', { protocol: 'postgres', listener: 'main', result: 'hit' });
      const first = (await client.query({ text: 'SELECT $1::timestamptz AS t', values: ['now'] })).rows[0].t as Date;
      await waitFor(
        async () => (await client.query('SELECT clock_timestamp() > $1::timestamptz AS later', [first])).rows[0].later === true,
        'the clock to move',
      );
      const second = (await client.query({ text: 'SELECT $1::timestamptz AS t', values: ['now'] })).rows[0].t as Date;
      expect(second.getTime()).toBeGreaterThan(first.getTime());
      for (const word of ['today', 'Tomorrow', 'yesterday 12:00']) {
        await client.query({ text: 'SELECT $1::timestamp AS t', values: [word] });
        await client.query({ text: 'SELECT $1::timestamp AS t', values: [word] });
      }
      expect(await hits()).toBe(0);
      // An ordinary value is still cached.
      await client.query({ text: 'SELECT $1::timestamptz AS t', values: ['2026-01-01 00:00:00+00'] });
      await client.query({ text: 'SELECT $1::timestamptz AS t', values: ['2026-01-01 00:00:00+00'] });
      expect(await hits()).toBe(1);
    } finally {
      await client.end();
      await server.stop(100);
    }
  });
});

describe.skipIf(unreachable !== undefined)('postgres listener: parameters of types read from the catalog', () => {
  it('a parameter declared regclass is looked up when the statement runs: its answer follows DROP and CREATE', async () => {
    const { server, port } = await startPgSidecache();
    const direct = await connect(undefined);
    const t = unique('t');
    const socket = await rawSession(port);
    const cstr = (v: string) => Buffer.from(`${v}\0`);
    // Parse with the parameter declared regclass (OID 2205), as typed drivers send it.
    const batch = Buffer.concat([message('P', cstr(''), cstr('SELECT $1::oid::int AS o'), i16(1), i32(2205)), bind('', [t]), execute(), sync()]);
    const ask = async () => firstColumn(readMessages(await exchange(socket, batch, 1)).find((m) => m.code === 'D')!.body);
    try {
      await direct.query(`CREATE TABLE ${t} (v int)`);
      const first = await ask();
      await direct.query(`DROP TABLE ${t}; CREATE TABLE ${t} (v int)`);
      const second = await ask();
      expect(second).not.toBe(first);
      expect(await metric(server, 'sidecache_requests_total', { protocol: 'postgres', listener: 'main', result: 'hit' })).toBe(0);
    } finally {
      socket.destroy();
      await direct.query(`DROP TABLE IF EXISTS ${t}`);
      await direct.end();
      await server.stop(100);
    }
  });
});
