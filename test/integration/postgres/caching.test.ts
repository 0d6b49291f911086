import type pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { sample } from '../../helpers/sidecache.js';
import { connect, pgUnreachable, unique, usePgFixture } from '../../helpers/pg.js';

const unreachable = await pgUnreachable();

describe.skipIf(unreachable !== undefined)('postgres listener: caching reads, correct under writes', () => {
  const f = usePgFixture(
    'accounts',
    (t) => `CREATE TABLE ${t} (id int PRIMARY KEY, name text, balance numeric, tags text[], at timestamptz);
      INSERT INTO ${t} SELECT g, 'user ' || g, g * 1.5, ARRAY['a', 'b'], '2026-01-01T00:00:00Z' FROM generate_series(1, 50) g`,
  );
  const clients: pg.Client[] = [];
  const through = async (options: Partial<pg.ClientConfig> = {}) => {
    const c = await connect(f.port, options);
    clients.push(c);
    return c;
  };

  afterAll(async () => {
    for (const c of clients) await c.end().catch(() => undefined);
  });

  it('returns what PostgreSQL returns, for simple and parameterized queries, text and binary', async () => {
    const via = await through();
    const queries: pg.QueryConfig[] = [
      { text: `SELECT * FROM ${f.table} ORDER BY id` },
      { text: `SELECT id, name, balance, tags, at FROM ${f.table} WHERE id = $1`, values: [7] },
      { text: `SELECT id, balance FROM ${f.table} WHERE id > $1 ORDER BY id`, values: [40], binary: true } as pg.QueryConfig,
      { text: `SELECT count(*), sum(balance) FROM ${f.table}` },
      { text: 'SELECT 1 AS one, NULL::text AS nothing' },
    ];
    for (const q of queries) {
      const expected = await f.direct.query(q);
      for (let i = 0; i < 3; i++) {
        const got = await via.query(q);
        expect(got.rows).toEqual(expected.rows);
        expect(got.fields.map((f) => [f.name, f.dataTypeID, f.format])).toEqual(expected.fields.map((f) => [f.name, f.dataTypeID, f.format]));
      }
    }
  });

  it('serves repeats from the cache (a direct write is not seen) and a write through sidecache invalidates at once', async () => {
    const via = await through();
    const read = async () => (await via.query(`SELECT name FROM ${f.table} WHERE id = $1`, [3])).rows[0].name;
    expect(await read()).toBe('user 3');
    expect(await read()).toBe('user 3');
    await f.direct.query(`UPDATE ${f.table} SET name = 'changed directly' WHERE id = 3`);
    expect(await read()).toBe('user 3');
    const simple = async () => (await via.query(`SELECT name FROM ${f.table} WHERE id = 3`)).rows[0].name;
    await simple();
    await via.query(`UPDATE ${f.table} SET name = 'written through' WHERE id = 3`);
    expect(await read()).toBe('written through');
    expect(await simple()).toBe('written through');
  });

  it('never caches reads in a transaction, volatile functions, or locking reads', async () => {
    const via = await through();
    await via.query('BEGIN');
    const inTx = async () => (await via.query(`SELECT name FROM ${f.table} WHERE id = 4`)).rows[0].name;
    expect(await inTx()).toBe('user 4');
    await f.direct.query(`UPDATE ${f.table} SET name = 'tx changed' WHERE id = 4`);
    expect(await inTx()).toBe('tx changed');
    await via.query('COMMIT');
    const seq = unique('seq');
    await f.direct.query(`CREATE SEQUENCE ${seq}`);
    try {
      const a = (await via.query(`SELECT nextval('${seq}') AS v`)).rows[0].v;
      const b = (await via.query(`SELECT nextval('${seq}') AS v`)).rows[0].v;
      expect(Number(b)).toBe(Number(a) + 1);
      const r1 = (await via.query('SELECT random() AS r')).rows[0].r;
      const r2 = (await via.query('SELECT random() AS r')).rows[0].r;
      expect(r1).not.toBe(r2);
      const t1 = (await via.query('SELECT clock_timestamp()::text AS t')).rows[0].t;
      const t2 = (await via.query('SELECT clock_timestamp()::text AS t')).rows[0].t;
      expect(t1).not.toBe(t2);
      const n1 = (await via.query('SELECT now()::text AS t')).rows[0].t;
      // PostgreSQL's own clock has to move past now()'s resolution; no test clock reaches it.
      await new Promise((r) => setTimeout(r, 5));
      expect((await via.query('SELECT now()::text AS t')).rows[0].t).not.toBe(n1);
    } finally {
      await f.direct.query(`DROP SEQUENCE ${seq}`);
    }
  });

  it("keys on search_path: another schema gives that schema's rows", async () => {
    const schema = unique('other');
    const name = unique('items');
    await f.direct.query(`CREATE SCHEMA ${schema}; CREATE TABLE public.${name} (v text); CREATE TABLE ${schema}.${name} (v text);
      INSERT INTO public.${name} VALUES ('public'); INSERT INTO ${schema}.${name} VALUES ('other')`);
    try {
      const via = await through();
      expect((await via.query(`SELECT v FROM ${name}`)).rows[0].v).toBe('public');
      expect((await via.query(`SELECT v FROM ${name}`)).rows[0].v).toBe('public');
      await via.query(`SET search_path TO ${schema}`);
      expect((await via.query(`SELECT v FROM ${name}`)).rows[0].v).toBe('other');
      await via.query('RESET ALL');
      expect((await via.query(`SELECT v FROM ${name}`)).rows[0].v).toBe('public');
    } finally {
      await f.direct.query(`DROP SCHEMA ${schema} CASCADE; DROP TABLE public.${name}`);
    }
  });

  it('never lets two roles share an entry', async () => {
    const [r1, r2] = [unique('r1'), unique('r2')];
    const secret = unique('secret');
    await f.direct.query(
      `CREATE ROLE ${r1} LOGIN; CREATE ROLE ${r2} LOGIN; CREATE TABLE ${secret} (v text); INSERT INTO ${secret} VALUES ('x'); GRANT SELECT ON ${secret} TO ${r1}`,
    );
    try {
      const one = await through({ user: r1 });
      expect((await one.query(`SELECT v FROM ${secret}`)).rows).toEqual([{ v: 'x' }]);
      expect((await one.query(`SELECT v FROM ${secret}`)).rows).toEqual([{ v: 'x' }]);
      const two = await through({ user: r2 });
      await expect(two.query(`SELECT v FROM ${secret}`)).rejects.toThrow(/permission denied/);
      // SET ROLE changes the key too.
      const admin = await through();
      await admin.query(`SET ROLE ${r2}`);
      await expect(admin.query(`SELECT v FROM ${secret}`)).rejects.toThrow(/permission denied/);
    } finally {
      for (const c of clients.splice(0)) await c.end().catch(() => undefined);
      await f.direct.query(`DROP TABLE ${secret}; DROP ROLE ${r1}; DROP ROLE ${r2}`);
    }
  });

  it('passes errors mid-result and notices through and stores neither', async () => {
    const via = await through();
    const boom = `SELECT 10 / (3 - g) AS v FROM generate_series(1, 5) g`;
    await expect(via.query(boom)).rejects.toThrow(/division by zero/);
    await expect(via.query(boom)).rejects.toThrow(/division by zero/);
    const fn = unique('noisy');
    await f.direct.query(`CREATE FUNCTION ${fn}(int) RETURNS int IMMUTABLE LANGUAGE plpgsql AS $$ BEGIN RAISE NOTICE 'noise %', $1; RETURN $1; END $$`);
    try {
      const notices: string[] = [];
      via.on('notice', (n) => notices.push(n.message ?? ''));
      for (let i = 0; i < 3; i++) expect((await via.query(`SELECT ${fn}(5) AS v`)).rows).toEqual([{ v: 5 }]);
      expect(notices).toEqual(['noise 5', 'noise 5', 'noise 5']);
    } finally {
      await f.direct.query(`DROP FUNCTION ${fn}(int)`);
    }
  });

  it('keeps named prepared statements known upstream after they were answered from the cache', async () => {
    const a = await through();
    const b = await through();
    const q = (id: number) => ({ name: 'by_id', text: `SELECT name FROM ${f.table} WHERE id = $1`, values: [id] });
    expect((await a.query(q(10))).rows).toEqual([{ name: 'user 10' }]);
    expect((await a.query(q(10))).rows).toEqual([{ name: 'user 10' }]);
    // b's Parse of by_id is answered from the cache: the upstream has not seen it yet.
    expect((await b.query(q(10))).rows).toEqual([{ name: 'user 10' }]);
    expect((await b.query(q(11))).rows).toEqual([{ name: 'user 11' }]);
    expect((await b.query(q(12))).rows).toEqual([{ name: 'user 12' }]);
  });

  it('passes COPY both ways, and a COPY FROM invalidates', async () => {
    const via = await through();
    const target = unique('copy');
    await via.query(`CREATE TABLE ${target} (id int, v text)`);
    try {
      expect((await via.query(`SELECT count(*)::int AS n FROM ${target}`)).rows[0].n).toBe(0);
      expect((await via.query(`SELECT count(*)::int AS n FROM ${target}`)).rows[0].n).toBe(0);
      const { from, to } = await import('pg-copy-streams');
      const { pipeline } = await import('node:stream/promises');
      const { Readable, Writable } = await import('node:stream');
      await pipeline(Readable.from(['1\tone\n', '2\ttwo\n']), via.query(from(`COPY ${target} FROM STDIN`)));
      expect((await via.query(`SELECT count(*)::int AS n FROM ${target}`)).rows[0].n).toBe(2);
      let out = '';
      await pipeline(
        via.query(to(`COPY ${target} TO STDOUT`)),
        new Writable({
          write(chunk, _e, cb) {
            out += chunk;
            cb();
          },
        }),
      );
      expect(out).toBe('1\tone\n2\ttwo\n');
    } finally {
      await via.query(`DROP TABLE ${target}`);
    }
  });

  it('counts hits and misses in the metrics', async () => {
    const via = await through();
    const count = async (result: string) =>
      sample(await (await fetch(`${f.server.adminUrl}/metrics`)).text(), 'sidecache_requests_total', { protocol: 'postgres', listener: 'main', result });
    const [hits, misses] = [await count('hit'), await count('miss')];
    for (let i = 0; i < 4; i++) await via.query(`SELECT name FROM ${f.table} WHERE id = $1 AND name <> 'metrics'`, [1]);
    expect([(await count('hit')) - hits, (await count('miss')) - misses]).toEqual([3, 1]);
    const text = await (await fetch(`${f.server.adminUrl}/metrics`)).text();
    expect(sample(text, 'sidecache_invalidations_total', { source: 'postgres:main' })).toBeGreaterThan(0);
  });
});
