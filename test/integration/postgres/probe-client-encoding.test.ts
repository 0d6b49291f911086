/**
 * Probe (reviewer): SQL texts are decoded as UTF-8 for the key, whatever the session's
 * client_encoding. With LATIN1 (WIN1252, …) every byte above 0x7F that is not valid UTF-8 becomes
 * U+FFFD, so `SELECT 'é'` and `SELECT 'ü'` (or `WHERE name = 'Jürgen'` and `= 'Jérgen'`) share a
 * key: another session gets the other statement's rows.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SidecacheServer } from '../../../src/server.js';
import { readMessages } from '../../helpers/pg-bytes.js';
import { pgUnreachable, startPgSidecache } from '../../helpers/pg.js';
import { exchange, rawSession } from './raw-session.js';

const unreachable = await pgUnreachable();

/** A simple Query whose text is sent as the given bytes. */
function latin1Query(sql: string): Buffer {
  const body = Buffer.concat([Buffer.from(sql, 'latin1'), Buffer.from([0])]);
  const head = Buffer.alloc(5);
  head.write('Q', 0, 'latin1');
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}
const rows = (answer: Buffer) =>
  readMessages(answer)
    .filter((m) => m.code === 'D')
    .map((m) => m.body.toString('latin1', 6));

describe.skipIf(unreachable !== undefined)('probe: SQL texts in a non-UTF-8 client_encoding', () => {
  let server: SidecacheServer;
  let port: number;

  beforeAll(async () => {
    ({ server, port } = await startPgSidecache());
  });
  afterAll(async () => {
    await server?.stop(100);
  });

  it('two texts that differ only in LATIN1 letters are two keys', async () => {
    const a = await rawSession(port, { client_encoding: 'LATIN1' });
    const b = await rawSession(port, { client_encoding: 'LATIN1' });
    try {
      expect(rows(await exchange(a, latin1Query("SELECT 'J\u00e9rgen' AS v"), 1))).toEqual(['J\u00e9rgen']);
      expect(rows(await exchange(b, latin1Query("SELECT 'J\u00fcrgen' AS v"), 1))).toEqual(['J\u00fcrgen']);
    } finally {
      a.destroy();
      b.destroy();
    }
  });
});
