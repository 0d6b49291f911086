/**
 * Session state and the cache: a result is stored or served only when the session's state is the
 * one its key says, tracked from what the server confirmed (a SET counts once it succeeded and
 * its transaction committed), and anything the listener cannot model taints the session.
 */
import type net from 'node:net';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SidecacheServer } from '../../../src/server.js';
import { connect, pgUnreachable, startPgSidecache, unique } from '../../helpers/pg.js';
import { bind, execute, firstColumn, parse, query, readMessages, sync } from '../../helpers/pg-bytes.js';
import { metric } from '../../helpers/sidecache.js';
import { waitFor } from '../../helpers/wait.js';
import { exchange, rawSession } from './raw-session.js';

const unreachable = await pgUnreachable();

describe.skipIf(unreachable !== undefined)('postgres listener: session state', () => {
  let server: SidecacheServer;
  let port: number;
  let direct: pg.Client;
  const clients: pg.Client[] = [];
  const app = unique('app');
  const low = unique('low');
  const secret = unique('secret');
  const t = unique('t');
  const s2 = unique('s2');
  const tt = unique('tt');

  /** A new session through sidecache, as `app` unless told. */
  const session = async (user = app) => {
    const c = await connect(port, { user });
    clients.push(c);
    return c;
  };
  const rows = async (c: pg.Client, sql: string) => (await c.query(sql)).rows.map((r) => Object.values(r).join(','));
  const sqlstate = async (c: pg.Client, sql: string) => {
    try {
      await c.query(sql);
      return 'ok';
    } catch (err) {
      return (err as { code?: string }).code;
    }
  };
  const hits = () => metric(server, 'sidecache_requests_total', { protocol: 'postgres', listener: 'main', result: 'hit' });

  beforeAll(async () => {
    ({ server, port } = await startPgSidecache());
    direct = await connect(undefined);
    await direct.query(`
      CREATE ROLE ${low} LOGIN; CREATE ROLE ${app} LOGIN IN ROLE ${low};
      CREATE TABLE ${secret} (v text); INSERT INTO ${secret} VALUES ('classified'); GRANT SELECT ON ${secret} TO ${app};
      CREATE TABLE public.${t} (v text); INSERT INTO public.${t} VALUES ('public row'); GRANT SELECT ON public.${t} TO ${low};
      CREATE SCHEMA ${s2}; CREATE TABLE ${s2}.${t} (v text); INSERT INTO ${s2}.${t} VALUES ('s2 row');
      GRANT USAGE ON SCHEMA ${s2} TO ${low}; GRANT SELECT ON ${s2}.${t} TO ${low};
      CREATE TABLE ${tt} (id int); INSERT INTO ${tt} VALUES (1); GRANT SELECT ON ${tt} TO ${low};
      GRANT CREATE, USAGE ON SCHEMA public TO ${low}; GRANT TEMP ON DATABASE test TO ${low};`);
  });
  afterAll(async () => {
    for (const c of clients) await c.end().catch(() => undefined);
    await server?.stop(100);
    // A backend drops its temporary objects as it exits, after the client saw the close: the roles
    // that own them can be dropped only once those backends are gone.
    await waitFor(
      async () => (await direct.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = ANY($1)', [[app, low]])).rows[0].n === 0,
      'the sessions of the test roles to end',
    );
    await direct?.query(`DROP SCHEMA IF EXISTS ${s2} CASCADE; DROP TABLE IF EXISTS ${secret}, public.${t}, ${tt};
      REVOKE ALL ON SCHEMA public FROM ${low}; REVOKE ALL ON DATABASE test FROM ${low}; DROP ROLE IF EXISTS ${app}; DROP ROLE IF EXISTS ${low}`);
    await direct?.end();
  });

  it('the role survives RESET ALL, as on the server: no cached rows for it, and current_user stays per session (1)', async () => {
    const a = await session();
    expect(await rows(a, `SELECT * FROM ${secret}`)).toEqual(['classified']);
    expect(await rows(a, 'SELECT current_user')).toEqual([app]);
    await a.query(`SET ROLE ${low}`);
    await a.query('RESET ALL');
    // PostgreSQL keeps the role through RESET ALL: the read is denied there, so it is here.
    expect(await sqlstate(a, `SELECT * FROM ${secret}`)).toBe('42501');
    expect(await rows(a, 'SELECT current_user')).toEqual([low]);
    const b = await session();
    expect(await rows(b, 'SELECT current_user')).toEqual([app]);
    expect(await rows(b, `SELECT * FROM ${secret}`)).toEqual(['classified']);
  });

  it('a SET ROLE or search_path that was rolled back is not in the key (2)', async () => {
    const a = await session();
    await a.query('BEGIN');
    await a.query(`SET ROLE ${low}`);
    await a.query('ROLLBACK');
    expect(await rows(a, `SELECT * FROM ${secret}`)).toEqual(['classified']);
    const b = await session();
    await b.query(`SET ROLE ${low}`);
    expect(await sqlstate(b, `SELECT * FROM ${secret}`)).toBe('42501');

    const c = await session();
    await c.query('BEGIN');
    await c.query(`SET search_path = ${s2}`);
    await c.query('ROLLBACK');
    expect(await rows(c, `SELECT * FROM ${t}`)).toEqual(['public row']);
    const d = await session();
    await d.query(`SET search_path = ${s2}`);
    expect(await rows(d, `SELECT * FROM ${t}`)).toEqual(['s2 row']);
  });

  it('a SET inside a transaction counts once committed, and not when the transaction failed', async () => {
    const a = await session();
    await a.query('BEGIN');
    await a.query(`SET search_path = ${s2}`);
    await a.query('COMMIT');
    expect(await rows(a, `SELECT * FROM ${t}`)).toEqual(['s2 row']);
    const b = await session();
    await b.query('BEGIN');
    await b.query(`SET search_path = ${s2}`);
    expect(await sqlstate(b, 'SELECT 1/0')).toBe('22012');
    await b.query('COMMIT');
    expect(await rows(b, `SELECT * FROM ${t}`)).toEqual(['public row']);
    const c = await session();
    await c.query('BEGIN');
    await c.query('SAVEPOINT p');
    await c.query(`SET search_path = ${s2}`);
    await c.query('ROLLBACK TO SAVEPOINT p');
    await c.query('COMMIT');
    expect(await rows(c, `SELECT * FROM ${t}`)).toEqual(['public row']);
    expect(await rows(await session(), `SELECT * FROM ${t}`)).toEqual(['public row']);
  });

  it('a DISCARD ALL that failed resets nothing (3)', async () => {
    const a = await session();
    await a.query(`SET search_path = ${s2}`);
    await a.query('BEGIN');
    expect(await sqlstate(a, 'DISCARD ALL')).toBe('25001');
    await a.query('ROLLBACK');
    expect(await rows(a, `SELECT * FROM ${t}`)).toEqual(['s2 row']);
    expect(await rows(await session(), `SELECT * FROM ${t}`)).toEqual(['public row']);
  });

  it('set_config inside DO taints the session (4)', async () => {
    const a = await session();
    await a.query(`DO $$ BEGIN PERFORM set_config('search_path', '${s2}', false); END $$`);
    expect(await rows(a, `SELECT * FROM ${t}`)).toEqual(['s2 row']);
    expect(await rows(a, `SELECT * FROM ${t}`)).toEqual(['s2 row']);
    expect(await rows(await session(), `SELECT * FROM ${t}`)).toEqual(['public row']);
    // DISCARD ALL outside a transaction makes the session clean again.
    await a.query('DISCARD ALL');
    expect(await rows(a, `SELECT * FROM ${t}`)).toEqual(['public row']);
  });

  it('a FunctionCall message taints the session (it may call set_config)', async () => {
    const oid = Number((await direct.query("SELECT 'set_config'::regproc::oid AS oid")).rows[0].oid);
    const text = (v: string) => [Buffer.from([0, 0, 0, Buffer.byteLength(v)].map((b, i) => (i < 3 ? 0 : b))), Buffer.from(v)];
    const body = Buffer.concat([Buffer.alloc(4), Buffer.from([0, 1, 0, 0, 0, 3]), ...text('search_path'), ...text(s2), ...text('false'), Buffer.from([0, 0])]);
    body.writeInt32BE(oid, 0);
    const call = Buffer.concat([Buffer.from('F'), Buffer.alloc(4), body]);
    call.writeInt32BE(body.length + 4, 1);
    // Raw sessions share their startup parameters, so their keys: the clean one's answer is stored first.
    const read = async (socket: net.Socket) =>
      readMessages(await exchange(socket, query(`SELECT * FROM ${t}`), 1))
        .filter((m) => m.code === 'D')
        .map((m) => firstColumn(m.body));
    const clean = await rawSession(port, { user: app });
    await waitFor(async () => {
      const before = await hits();
      expect(await read(clean)).toEqual(['public row']);
      return (await hits()) > before;
    }, 'a stored answer for a clean session');
    const socket = await rawSession(port, { user: app });
    await exchange(socket, call, 1);
    expect(await read(socket)).toEqual(['s2 row']);
    expect(await read(clean)).toEqual(['public row']);
    for (const s of [socket, clean]) s.destroy();
  });

  it('a DO block that commits part way and then fails still taints: what it committed stays', async () => {
    const a = await session();
    expect(await sqlstate(a, `DO $$ BEGIN PERFORM set_config('search_path', '${s2}', false); COMMIT; RAISE 'no'; END $$`)).toBe('P0001');
    expect(await rows(a, `SELECT * FROM ${t}`)).toEqual(['s2 row']);
    expect(await rows(await session(), `SELECT * FROM ${t}`)).toEqual(['public row']);
  });

  it('a temporary table made by SELECT INTO is seen by its session only (5)', async () => {
    const other = await session();
    expect(await rows(other, `SELECT * FROM ${tt}`)).toEqual(['1']);
    const a = await session();
    await a.query(`SELECT 99 AS id INTO TEMP ${tt}`);
    expect(await rows(a, `SELECT * FROM ${tt}`)).toEqual(['99']);
    expect(await rows(a, `SELECT * FROM ${tt}`)).toEqual(['99']);
    expect(await rows(await session(), `SELECT * FROM ${tt}`)).toEqual(['1']);
  });

  it('a Query inside an unfinished extended batch taints: the server may have skipped it after an error', async () => {
    const socket = await rawSession(port, { user: app });
    // After the division by zero the server discards messages up to Sync, the Query included.
    const mixed = Buffer.concat([parse('', 'SELECT 1/0'), bind('', []), execute(), query(`SET search_path = ${s2}`), sync()]);
    await exchange(socket, mixed, 1);
    const answer = readMessages(await exchange(socket, query(`SELECT * FROM ${t}`), 1));
    expect(answer.filter((m) => m.code === 'D').map((m) => firstColumn(m.body))).toEqual(['public row']);
    socket.destroy();
    const b = await session();
    await b.query(`SET search_path = ${s2}`);
    expect(await rows(b, `SELECT * FROM ${t}`)).toEqual(['s2 row']);
  });

  it('a skipped Query does not shift later responses: a write right after it invalidates at once', async () => {
    const w = unique('w');
    await direct.query(`CREATE TABLE ${w} (v text); INSERT INTO ${w} VALUES ('old'); GRANT ALL ON ${w} TO ${low}`);
    try {
      const reader = await session();
      expect(await rows(reader, `SELECT v FROM ${w}`)).toEqual(['old']);
      expect(await rows(reader, `SELECT v FROM ${w}`)).toEqual(['old']);
      const socket = await rawSession(port, { user: app });
      await exchange(socket, Buffer.concat([parse('', 'SELECT 1/0'), bind('', []), execute(), query('SELECT 1'), sync()]), 1);
      await exchange(socket, query(`UPDATE ${w} SET v = 'new'`), 1);
      expect(await rows(reader, `SELECT v FROM ${w}`)).toEqual(['new']);
      socket.destroy();
    } finally {
      await direct.query(`DROP TABLE ${w}`);
    }
  });

  it('ordinary session settings keep the hit ratio: SET application_name, SET search_path, SET LOCAL in a committed transaction', async () => {
    const setUp = async () => {
      const c = await session();
      await c.query("SET application_name = 'orm'");
      await c.query('SET search_path = public');
      await c.query('BEGIN');
      await c.query("SET LOCAL statement_timeout = '5s'");
      await c.query(`SELECT * FROM ${t}`);
      await c.query('COMMIT');
      return c;
    };
    const a = await setUp();
    // The first use of a SQL text may go upstream while its plan is worked out; then it is stored and hits.
    await waitFor(async () => {
      const before = await hits();
      expect(await rows(a, `SELECT v FROM ${t}`)).toEqual(['public row']);
      return (await hits()) > before;
    }, 'a hit for a session with ordinary settings');
    for (let i = 0; i < 3; i++) {
      const before = await hits();
      expect(await rows(a, `SELECT v FROM ${t}`)).toEqual(['public row']);
      expect(await hits()).toBe(before + 1);
    }
    // Another session in the same state shares the entry.
    const b = await setUp();
    const before = await hits();
    expect(await rows(b, `SELECT v FROM ${t}`)).toEqual(['public row']);
    expect(await hits()).toBe(before + 1);
  });
});
