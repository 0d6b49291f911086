/**
 * Probe (reviewer): a cast to a date/time type reads the clock when its input is the text 'now',
 * 'today', … at execution, not only when it is a constant: a text column, a concatenation, a
 * binary-format text parameter. timestamptz_in and date_in are STABLE; sidecache checks only the
 * constants, so these answers are frozen for the TTL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import type { SidecacheServer } from '../../../src/server.js';
import { i16, i32, message, readMessages, sync } from '../../helpers/pg-bytes.js';
import { connect, pgUnreachable, startPgSidecache, unique } from '../../helpers/pg.js';
import { metric } from '../../helpers/sidecache.js';
import { waitFor } from '../../helpers/wait.js';
import { exchange, rawSession } from './raw-session.js';

const unreachable = await pgUnreachable();

/** Parse '' with $1 typed text, Bind with $1 in binary format (text's binary form is its bytes), Execute, Sync. */
const binaryNow = (sql: string) =>
  Buffer.concat([
    message('P', Buffer.from(`\0${sql}\0`), i16(1), i32(25)),
    message('B', Buffer.from('\0\0'), i16(1), i16(1), i16(1), i32(3), Buffer.from('now'), i16(0)),
    message('E', Buffer.from('\0'), i32(0)),
    sync(),
  ]);

describe.skipIf(unreachable !== undefined)('probe: casts of computed text to date/time types', () => {
  let server: SidecacheServer;
  let port: number;
  let direct: pg.Client;
  const t = unique('pr_when');

  beforeAll(async () => {
    ({ server, port } = await startPgSidecache());
    direct = await connect(undefined);
    await direct.query(`CREATE TABLE ${t} (s text); INSERT INTO ${t} VALUES ('now')`);
  });
  afterAll(async () => {
    await server?.stop(100);
    await direct?.query(`DROP TABLE ${t}`);
    await direct?.end();
  });

  for (const [label, sql] of [
    ['a text column', `SELECT s::timestamptz AS t FROM ${t}`],
    ['a concatenation', `SELECT ('n' || 'ow')::timestamptz AS t`],
  ] as const) {
    it(`${label} cast to timestamptz reads the clock each time`, async () => {
      const client = await connect(port);
      try {
        const hits = () => metric(server, 'sidecache_requests_total', { protocol: 'postgres', listener: 'main', result: 'hit' });
        const before = await hits();
        const first = (await client.query(sql)).rows[0].t as Date;
        await waitFor(
          async () => (await direct.query('SELECT clock_timestamp() > $1::timestamptz AS later', [first])).rows[0].later === true,
          'the clock to move',
        );
        const second = (await client.query(sql)).rows[0].t as Date;
        expect(await hits()).toBe(before);
        expect(second.getTime()).toBeGreaterThan(first.getTime());
      } finally {
        await client.end();
      }
    });
  }

  it("a binary-format text parameter 'now' cast to timestamptz reads the clock each time", async () => {
    const session = await rawSession(port);
    try {
      const hits = () => metric(server, 'sidecache_requests_total', { protocol: 'postgres', listener: 'main', result: 'hit' });
      const before = await hits();
      const value = (answer: Buffer) =>
        readMessages(answer)
          .find((m) => m.code === 'D')!
          .body.toString('utf8', 6);
      const batch = binaryNow('SELECT $1::timestamptz::text AS t');
      const first = value(await exchange(session, batch, 1));
      await waitFor(
        async () => (await direct.query('SELECT clock_timestamp() > $1::timestamptz AS later', [first])).rows[0].later === true,
        'the clock to move',
      );
      const second = value(await exchange(session, batch, 1));
      expect(await hits()).toBe(before);
      expect(second).not.toBe(first);
    } finally {
      session.destroy();
    }
  });
});
