/**
 * Probe (reviewer): writes made through sidecache by functions it does not look at. A SELECT that
 * calls a function that is not IMMUTABLE invalidates the database (it may write); the same call in
 * DECLARE CURSOR … FETCH, in COPY (SELECT …) TO, or inside a view's body invalidates nothing, nor
 * does an Execute of a portal bound from an SQL-PREPAREd INSERT. The other sessions' cached reads
 * of the written table stay stale for the TTL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import type { SidecacheServer } from '../../../src/server.js';
import { bind, execute, query, sync } from '../../helpers/pg-bytes.js';
import { connect, pgUnreachable, startPgSidecache, unique } from '../../helpers/pg.js';
import { exchange, rawSession } from './raw-session.js';

const unreachable = await pgUnreachable();

describe.skipIf(unreachable !== undefined)('probe: writes run by functions sidecache does not look at', () => {
  let server: SidecacheServer;
  let port: number;
  let direct: pg.Client;
  const t = unique('pr_w');
  const writer = unique('pr_writer');
  const view = unique('pr_wv');

  beforeAll(async () => {
    ({ server, port } = await startPgSidecache());
    direct = await connect(undefined);
    await direct.query(`
      CREATE TABLE ${t} (v int);
      CREATE FUNCTION ${writer}() RETURNS int LANGUAGE sql AS $$ INSERT INTO ${t} VALUES (1) RETURNING 1 $$;
      CREATE VIEW ${view} AS SELECT ${writer}() AS x;`);
  });
  afterAll(async () => {
    await server?.stop(100);
    await direct?.query(`DROP VIEW ${view}; DROP FUNCTION ${writer}(); DROP TABLE ${t}`);
    await direct?.end();
  });

  const cases: [string, (port: number) => Promise<void>][] = [
    [
      'DECLARE CURSOR … FETCH',
      async (p) => {
        const c = await connect(p);
        await c.query(`BEGIN; DECLARE c CURSOR FOR SELECT ${writer}(); FETCH ALL c; COMMIT`);
        await c.end();
      },
    ],
    [
      'COPY (SELECT …) TO STDOUT',
      async (p) => {
        const s = await rawSession(p);
        await exchange(s, query(`COPY (SELECT ${writer}()) TO STDOUT`), 1);
        s.destroy();
      },
    ],
    [
      'a view whose body calls the function',
      async (p) => {
        const c = await connect(p);
        await c.query(`SELECT * FROM ${view}`);
        await c.end();
      },
    ],
    [
      'an Execute of a portal bound from an SQL PREPARE',
      async (p) => {
        const s = await rawSession(p);
        await exchange(s, query(`PREPARE ins AS INSERT INTO ${t} VALUES (1)`), 1);
        await exchange(s, Buffer.concat([bind('ins', []), execute(), sync()]), 1);
        s.destroy();
      },
    ],
  ];

  for (const [label, write] of cases) {
    it(`a write through ${label} is seen by another session's next read`, async () => {
      const reader = await connect(port);
      try {
        const read = `SELECT count(*)::int AS n FROM ${t} WHERE '${label}' <> ''`;
        const before = (await reader.query(read)).rows[0].n as number;
        await write(port);
        expect((await direct.query(read)).rows[0].n).toBe(before + 1);
        expect((await reader.query(read)).rows[0].n).toBe(before + 1);
      } finally {
        await reader.end();
      }
    });
  }
});
