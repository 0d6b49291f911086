/**
 * Probe (reviewer): libpg-query reads every SQL text as if standard_conforming_strings were on.
 * A session may turn it off (any user may); the server then reads `\'` inside '…' as a quote, and
 * the two parsers split the same text differently: what sidecache takes for a constant the server
 * runs. `SELECT '\' AS a, ' AS b, random() AS c --'` is one SELECT of two constants to sidecache
 * and calls random() on the server; with escape_string_warning off (no notice) it is cached. The
 * same trick hides a whole statement (`; SET search_path = …`) from the session model.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import type { SidecacheServer } from '../../../src/server.js';
import { connect, pgUnreachable, startPgSidecache, unique, shadowedTable } from '../../helpers/pg.js';

const unreachable = await pgUnreachable();

const LEGACY = 'SET standard_conforming_strings = off; SET escape_string_warning = off';

describe.skipIf(unreachable !== undefined)('probe: standard_conforming_strings = off', () => {
  let server: SidecacheServer;
  let port: number;
  let direct: pg.Client;
  const { t, s2, create: createShadowed, drop: dropShadowed } = shadowedTable('sp');

  beforeAll(async () => {
    ({ server, port } = await startPgSidecache());
    direct = await connect(undefined);
    await direct.query(`
      ${createShadowed}`);
  });
  afterAll(async () => {
    await server?.stop(100);
    await direct?.query(dropShadowed);
    await direct?.end();
  });

  it('a call the server sees outside a string is not cached', async () => {
    const client = await connect(port);
    try {
      await client.query(LEGACY);
      const sql = String.raw`SELECT '\' AS a, ' AS b, random() AS c --'`;
      const first = (await client.query(sql)).rows[0].c as number;
      const second = (await client.query(sql)).rows[0].c as number;
      expect(second).not.toBe(first);
    } finally {
      await client.end();
    }
  });

  it('a SET the server sees outside a string changes the key', async () => {
    const a = await connect(port);
    const b = await connect(port);
    try {
      await a.query(LEGACY);
      await b.query(LEGACY);
      await a.query(String.raw`SELECT '\' AS a, ' AS b; SET search_path = ${s2}; SELECT '' --'`);
      expect((await a.query('SHOW search_path')).rows).toEqual([{ search_path: s2 }]);
      expect((await a.query(`SELECT v FROM ${t}`)).rows).toEqual([{ v: 's2 row' }]);
      expect((await b.query(`SELECT v FROM ${t}`)).rows).toEqual([{ v: 'public row' }]);
    } finally {
      await a.end();
      await b.end();
    }
  });
});
