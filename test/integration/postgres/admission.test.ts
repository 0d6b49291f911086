/**
 * Issue 15: `postgres[].admission: second-hit` stores a result only on its key's second miss, so a
 * stream of one-off lookups does not fill the store; `always` (the default) stores every miss.
 * What is not stored is never served: each read before the fill goes to PostgreSQL.
 */
import type pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { sample } from '../../helpers/sidecache.js';
import { connect, PG, pgUnreachable, usePgFixture, withPgSidecache } from '../../helpers/pg.js';

const unreachable = await pgUnreachable();

describe.skipIf(unreachable !== undefined)('postgres listener: admission second-hit', () => {
  const f = usePgFixture(
    'admit',
    (t) => `CREATE TABLE ${t} (id int PRIMARY KEY, v text); INSERT INTO ${t} SELECT g, 'v' || g FROM generate_series(1, 100) g`,
    '    admission: second-hit\n',
  );
  const clients: pg.Client[] = [];
  afterAll(async () => {
    for (const c of clients) await c.end().catch(() => undefined);
  });
  const metrics = async () => (await (await fetch(`${f.server.adminUrl}/metrics`)).text()) as string;
  const count = async (result: string) => sample(await metrics(), 'sidecache_requests_total', { protocol: 'postgres', listener: 'main', result });

  it('a simple and an extended read are stored on their second miss and served from the third read on', async () => {
    const via = await connect(f.port);
    clients.push(via);
    for (const read of [
      () => via.query(`SELECT v FROM ${f.table} WHERE id = 5`),
      () => via.query({ text: `SELECT v FROM ${f.table} WHERE id = $1`, values: [6] }),
    ]) {
      const [hits, misses] = [await count('hit'), await count('miss')];
      for (let i = 0; i < 4; i++) await read();
      expect([(await count('hit')) - hits, (await count('miss')) - misses]).toEqual([2, 2]);
    }
  });

  it('a read not yet stored answers what PostgreSQL holds now, and is stored only once seen twice', async () => {
    const via = await connect(f.port);
    clients.push(via);
    const read = async () => (await via.query(`SELECT v FROM ${f.table} WHERE id = 7`)).rows[0].v;
    expect(await read()).toBe('v7');
    // A direct write (sidecache does not see it): the first miss kept nothing that could hide it.
    await f.direct.query(`UPDATE ${f.table} SET v = 'changed' WHERE id = 7`);
    expect(await read()).toBe('changed');
    await f.direct.query(`UPDATE ${f.table} SET v = 'again' WHERE id = 7`);
    // Stored on the second miss: served from the cache now.
    expect(await read()).toBe('changed');
  });

  it('one-off lookups store nothing', async () => {
    const via = await connect(f.port);
    clients.push(via);
    const entries = sample(await metrics(), 'sidecache_cache_entries');
    for (let id = 20; id < 60; id++) await via.query(`SELECT v FROM ${f.table} WHERE id = ${id}`);
    expect(sample(await metrics(), 'sidecache_cache_entries')).toBe(entries);
  });

  it('a reload switches the policy: always stores the first miss, second-hit the second', async () => {
    const yaml = (extra: string) =>
      `admin: { listen: "127.0.0.1:0" }\npostgres:\n  - name: main\n    listen: "127.0.0.1:0"\n    upstream: "postgres://${PG.host}:${PG.port}?sslmode=disable"\n${extra}`;
    await withPgSidecache(async (port, server) => {
      const via = await connect(port);
      const results = async (id: number) => {
        const metrics = async () => (await fetch(`${server.adminUrl}/metrics`)).text();
        const labels = (result: string) => ({ protocol: 'postgres', listener: 'main', result });
        const before = await metrics();
        for (let i = 0; i < 3; i++) await via.query(`SELECT v FROM ${f.table} WHERE id = ${id}`);
        const after = await metrics();
        return ['hit', 'miss'].map((r) => sample(after, 'sidecache_requests_total', labels(r)) - sample(before, 'sidecache_requests_total', labels(r)));
      };
      try {
        expect(await results(80)).toEqual([2, 1]);
        expect((await server.reload(parseConfig(yaml('    admission: second-hit\n'), 'test.yaml', {}))).applied).toEqual(['postgres[main]']);
        expect(await results(81)).toEqual([1, 2]);
        await server.reload(parseConfig(yaml(''), 'test.yaml', {}));
        expect(await results(82)).toEqual([2, 1]);
      } finally {
        // Ended before this sidecache stops, which would end it with 57P01.
        await via.end();
      }
    });
  });
});
