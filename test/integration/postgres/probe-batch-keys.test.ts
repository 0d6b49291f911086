/**
 * Probe (reviewer): extended batches whose key misses what shapes the response.
 * - Parse of the unnamed statement, then Bind of a *named* one: the key takes the parameter types
 *   of the unnamed Parse, not of the statement bound, and no row description; two sessions whose
 *   statement of that name has other parameter types share the answer.
 * - Describe of statement X, then Bind of statement Y: the key names Y only, so the described
 *   shape of another session's X is replayed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SidecacheServer } from '../../../src/server.js';
import { bind, execute, parse, readMessages, sync } from '../../helpers/pg-bytes.js';
import { pgUnreachable, startPgSidecache } from '../../helpers/pg.js';
import { exchange, rawSession } from './raw-session.js';

const unreachable = await pgUnreachable();

function message(code: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(code, 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}
function typedParse(name: string, sql: string, oids: number[]): Buffer {
  const types = Buffer.alloc(2 + 4 * oids.length);
  types.writeInt16BE(oids.length);
  oids.forEach((o, i) => types.writeInt32BE(o, 2 + 4 * i));
  return message('P', Buffer.concat([Buffer.from(`${name}\0${sql}\0`), types]));
}
const describeStatement = (name: string) => message('D', Buffer.from(`S${name}\0`));
const rows = (answer: Buffer) =>
  readMessages(answer)
    .filter((m) => m.code === 'D')
    .map((m) => m.body.toString('utf8', 6));
/** The first column's name in the first RowDescription. */
const described = (answer: Buffer) => {
  const t = readMessages(answer).find((m) => m.code === 'T')!;
  return t.body.toString('utf8', 2, t.body.indexOf(0, 2));
};

describe.skipIf(unreachable !== undefined)('probe: batch keys', () => {
  let server: SidecacheServer;
  let port: number;

  beforeAll(async () => {
    ({ server, port } = await startPgSidecache());
  });
  afterAll(async () => {
    await server?.stop(100);
  });

  it("Parse '' then Bind of a named statement: the named statement's parameter types count", async () => {
    const a = await rawSession(port);
    const b = await rawSession(port);
    try {
      const batch = Buffer.concat([parse('', 'SELECT 1'), bind('pr_n', ['01']), execute(), sync()]);
      await exchange(a, Buffer.concat([typedParse('pr_n', 'SELECT $1 AS v', [23]), sync()]), 1);
      expect(rows(await exchange(a, batch, 1))).toEqual(['1']);
      await exchange(b, Buffer.concat([typedParse('pr_n', 'SELECT $1 AS v', [25]), sync()]), 1);
      // PostgreSQL: B's pr_n takes text, so '01' stays '01'.
      expect(rows(await exchange(b, batch, 1))).toEqual(['01']);
    } finally {
      a.destroy();
      b.destroy();
    }
  });

  it('Describe of one statement then Bind of another: the described statement counts', async () => {
    const a = await rawSession(port);
    const b = await rawSession(port);
    try {
      const setup = (x: string) => Buffer.concat([parse('pr_x', x), sync(), parse('pr_y', 'SELECT 2 AS y'), sync(), describeStatement('pr_y'), sync()]);
      const batch = Buffer.concat([describeStatement('pr_x'), bind('pr_y', []), execute(), sync()]);
      await exchange(a, setup('SELECT 1 AS from_a'), 3);
      expect(described(await exchange(a, batch, 1))).toBe('from_a');
      await exchange(b, setup('SELECT 1 AS from_b'), 3);
      expect(described(await exchange(b, batch, 1))).toBe('from_b');
    } finally {
      a.destroy();
      b.destroy();
    }
  });
});
