/**
 * Prepared statements through the cache: what shapes the bytes is in the key (Parse parameter
 * types, the row shape a statement was prepared with), and a statement the client named exists
 * upstream whenever the client names it again, by message or in SQL.
 */
import type net from 'node:net';
import { describe, expect, it } from 'vitest';
import { bind, describePortal, execute, fields, firstColumn, parse, query, readMessages, sync } from '../../helpers/pg-bytes.js';
import { pgUnreachable, usePgFixture } from '../../helpers/pg.js';
import { exchange, rawSession } from './raw-session.js';

const unreachable = await pgUnreachable();

const session = (port: number) => rawSession(port);

/** A Parse naming its parameter types, as psycopg's `%t` and typed drivers send it. */
function typedParse(name: string, sql: string, oids: number[]): Buffer {
  const body = Buffer.concat([Buffer.from(`${name}\0${sql}\0`), Buffer.from([0, oids.length]), ...oids.map((o) => Buffer.from([0, 0, o >> 8, o & 255]))]);
  const head = Buffer.alloc(5);
  head.write('P');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}
/** Describe ('D') or Close ('C') of a prepared statement. */
const statementMessage = (code: 'D' | 'C', name: string) => {
  const body = Buffer.from(`S${name}\0`);
  const head = Buffer.alloc(5);
  head.write(code);
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
};
const describeStatement = (name: string) => statementMessage('D', name);
const closeStatement = (name: string) => statementMessage('C', name);

const messages = (data: Buffer) => readMessages(data);
const errors = (data: Buffer) =>
  messages(data)
    .filter((m) => m.code === 'E')
    .map((m) => fields(m.body).C);
const rows = (data: Buffer) =>
  messages(data)
    .filter((m) => m.code === 'D')
    .map((m) => firstColumn(m.body));
/** Column count of each DataRow. */
const widths = (data: Buffer) =>
  messages(data)
    .filter((m) => m.code === 'D')
    .map((m) => m.body.readInt16BE(0));

describe.skipIf(unreachable !== undefined)('postgres listener: prepared statements and keys', () => {
  const f = usePgFixture('stmts', (t) => `CREATE TABLE ${t} (id int PRIMARY KEY, v text); INSERT INTO ${t} VALUES (1, 'one'), (2, 'two')`);

  it('the same SQL and Bind bytes with other Parse parameter types get their own answer (6)', async () => {
    const sql = `SELECT $1 AS v FROM ${f.table} WHERE id = 1`;
    const run = async (oid: number) => {
      const s = await session(f.port);
      const answer = await exchange(s, Buffer.concat([typedParse('', sql, [oid]), bind('', ['7']), describePortal(), execute(), sync()]), 1);
      s.destroy();
      const description = messages(answer).find((m) => m.code === 'T')!;
      // The column's type OID: after the name, table OID (4), column number (2).
      const nameEnd = description.body.indexOf(0, 2);
      return { type: description.body.readInt32BE(nameEnd + 7), rows: rows(answer) };
    };
    expect(await run(25)).toEqual({ type: 25, rows: ['7'] });
    expect(await run(20)).toEqual({ type: 20, rows: ['7'] });
    expect(await run(25)).toEqual({ type: 25, rows: ['7'] });
  });

  it('a re-Parse of an existing named statement meets 42P05, as on the server (7)', async () => {
    const sql = `SELECT v FROM ${f.table} WHERE id = $1`;
    const batch = Buffer.concat([parse('s7', sql), bind('s7', ['1']), describePortal(), execute(), sync()]);
    const a = await session(f.port);
    expect(rows(await exchange(a, batch, 1))).toEqual(['one']);
    const b = await session(f.port);
    expect(rows(await exchange(b, batch, 1))).toEqual(['one']);
    expect(errors(await exchange(b, Buffer.concat([parse('s7', sql), sync()]), 1))).toEqual(['42P05']);
    // The statement the server kept still answers.
    expect(rows(await exchange(b, Buffer.concat([bind('s7', ['2']), describePortal(), execute(), sync()]), 1))).toEqual(['two']);
    a.destroy();
    b.destroy();
  });

  it('a named statement exists upstream whenever the client names it: DEALLOCATE and EXECUTE in SQL (8)', async () => {
    const sql = `SELECT v FROM ${f.table} WHERE id = $1`;
    // psycopg in pipeline mode with prepare=True: Parse, Bind, Execute in one batch.
    const batch = Buffer.concat([parse('_pg3_0', sql), bind('_pg3_0', ['1']), describePortal(), execute(), sync()]);
    const a = await session(f.port);
    expect(rows(await exchange(a, batch, 1))).toEqual(['one']);
    const b = await session(f.port);
    expect(rows(await exchange(b, batch, 1))).toEqual(['one']);
    // Describe and Close messages name it too.
    const described = await exchange(b, Buffer.concat([describeStatement('_pg3_0'), sync()]), 1);
    expect(errors(described)).toEqual([]);
    expect(messages(described).map((m) => m.code)).toEqual(['t', 'T', 'Z']);
    const executed = await exchange(b, query('EXECUTE _pg3_0(2)'), 1);
    expect(errors(executed)).toEqual([]);
    expect(rows(executed)).toEqual(['two']);
    expect(errors(await exchange(b, query('DEALLOCATE _pg3_0'), 1))).toEqual([]);
    // Deallocated: a Bind meets the server's 26000, not a stored answer.
    expect(errors(await exchange(b, Buffer.concat([bind('_pg3_0', ['1']), describePortal(), execute(), sync()]), 1))).toEqual(['26000']);
    const c = await session(f.port);
    expect(rows(await exchange(c, batch, 1))).toEqual(['one']);
    expect(messages(await exchange(c, Buffer.concat([closeStatement('_pg3_0'), sync()]), 1)).map((m) => m.code)).toEqual(['3', 'Z']);
    expect(errors(await exchange(c, query('EXECUTE _pg3_0(1)'), 1))).toEqual(['26000']);
    c.destroy();
    a.destroy();
    b.destroy();
  });

  it('a named Parse that failed makes no statement: a later Parse of the name is what runs and what keys', async () => {
    const failing = `SELECT v FROM ${f.table} WHERE id = $1::no_such_type_here`;
    const run = Buffer.concat([bind('x', ['1']), execute(), sync()]);
    const prepareAs = async (socket: net.Socket, text: string) => {
      expect(errors(await exchange(socket, Buffer.concat([parse('x', failing), sync()]), 1))).toEqual(['42704']);
      expect(
        errors(await exchange(socket, Buffer.concat([parse('x', `SELECT '${text}' AS v FROM ${f.table} WHERE id = $1`), describeStatement('x'), sync()]), 1)),
      ).toEqual([]);
    };
    const a = await session(f.port);
    await prepareAs(a, 'other');
    expect(rows(await exchange(a, run, 1))).toEqual(['other']);
    expect(rows(await exchange(a, run, 1))).toEqual(['other']);
    const b = await session(f.port);
    await prepareAs(b, 'third');
    expect(rows(await exchange(b, run, 1))).toEqual(['third']);
    a.destroy();
    b.destroy();
  });

  it('a statement prepared before ALTER TABLE is not answered with rows of the new shape', async () => {
    const sql = `SELECT * FROM ${f.table} WHERE id = $1`;
    const prepare = Buffer.concat([parse('shape', sql), describeStatement('shape'), sync()]);
    const run = Buffer.concat([bind('shape', ['1']), execute(), sync()]);
    const old = await session(f.port);
    await exchange(old, prepare, 1);
    expect(widths(await exchange(old, run, 1))).toEqual([2]);
    expect(widths(await exchange(old, run, 1))).toEqual([2]);
    const ddl = await session(f.port);
    await exchange(ddl, query(`ALTER TABLE ${f.table} ADD COLUMN extra int DEFAULT 5`), 1);
    const fresh = await session(f.port);
    await exchange(fresh, prepare, 1);
    expect(widths(await exchange(fresh, run, 1))).toEqual([3]);
    expect(widths(await exchange(fresh, run, 1))).toEqual([3]);
    // PostgreSQL answers the old statement with 0A000 (cached plan must not change result type).
    const answer = await exchange(old, run, 1);
    expect(widths(answer)).toEqual([]);
    expect(errors(answer)).toEqual(['0A000']);
    for (const s of [old, ddl, fresh]) s.destroy();
  });
});
