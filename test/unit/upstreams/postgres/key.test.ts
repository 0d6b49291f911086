import { describe, expect, it } from 'vitest';
import { batchKey, queryKey } from '../../../../src/upstreams/postgres/key.js';

const fingerprint = 'pg\u0000main\u0000test\u0000alice\u0000database=test\u0001user=alice\u0000TimeZone=UTC\u0000\u0000';

describe('Postgres store keys', () => {
  it('keys a simple Query by fingerprint, Q and the SQL text', () => {
    expect(queryKey(fingerprint, 'SELECT 1')).toBe(`${fingerprint}Q\u0000SELECT 1`);
  });

  it('keys an extended batch by fingerprint, shape, SQL text and Bind tail', () => {
    const tail = '\u0000\u0000\u0000\u0001\u0000\u0000\u0000\u000242\u0000\u0000';
    expect(batchKey(fingerprint, 'PBDE', 'SELECT $1::int', tail)).toBe(`${fingerprint}PBDE\u0000SELECT $1::int\u0000${tail}`);
  });

  it('keeps apart what the response depends on', () => {
    const keys = [
      queryKey(fingerprint, 'SELECT 1'),
      batchKey(fingerprint, 'BE', 'SELECT 1', ''),
      batchKey(fingerprint, 'BDE', 'SELECT 1', ''),
      batchKey(fingerprint, 'BE', 'SELECT 1', '\u0000\u0001'),
      queryKey(fingerprint.replace('alice', 'bob'), 'SELECT 1'),
    ];
    expect(new Set(keys).size).toBe(keys.length);
  });
});
