/**
 * Text cast to a type built on a date/time type (a domain over timestamptz, a composite with a
 * timestamptz attribute) reads the clock for 'now' like the date/time type itself.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import type { SidecacheServer } from '../../../src/server.js';
import { connect, pgUnreachable, startPgSidecache, unique } from '../../helpers/pg.js';
import { metric } from '../../helpers/sidecache.js';
import { waitFor } from '../../helpers/wait.js';

const unreachable = await pgUnreachable();

describe.skipIf(unreachable !== undefined)('casts to types built on date/time types', () => {
  let server: SidecacheServer;
  let port: number;
  let direct: pg.Client;
  const t = unique('cd_t');
  const dom = unique('cd_dom');
  const comp = unique('cd_comp');

  beforeAll(async () => {
    ({ server, port } = await startPgSidecache());
    direct = await connect(undefined);
    await direct.query(`CREATE DOMAIN ${dom} AS timestamptz; CREATE TYPE ${comp} AS (at timestamptz);
      CREATE TABLE ${t} (s text, r text); INSERT INTO ${t} VALUES ('now', '(now)')`);
  });
  afterAll(async () => {
    await server?.stop(100);
    await direct?.query(`DROP TABLE ${t}; DROP DOMAIN ${dom}; DROP TYPE ${comp}`);
    await direct?.end();
  });

  for (const [label, sql] of [
    ['a domain over timestamptz', `SELECT s::${dom}::text AS t FROM ${t}`],
    ['a composite type with a timestamptz attribute', `SELECT (r::${comp}).at::text AS t FROM ${t}`],
  ] as const) {
    it(`a text column cast to ${label} reads the clock each time`, async () => {
      const client = await connect(port);
      try {
        const hits = () => metric(server, 'sidecache_requests_total', { protocol: 'postgres', listener: 'main', result: 'hit' });
        const before = await hits();
        const first = (await client.query(sql)).rows[0].t as string;
        await waitFor(
          async () => (await direct.query('SELECT clock_timestamp() > $1::timestamptz AS later', [first])).rows[0].later === true,
          'the clock to move',
        );
        const second = (await client.query(sql)).rows[0].t as string;
        expect(await hits()).toBe(before);
        expect(second).not.toBe(first);
      } finally {
        await client.end();
      }
    });
  }
});
