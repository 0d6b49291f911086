import { describe, expect, it } from 'vitest';
import { batchKey, field, queryKey } from '../../../../src/upstreams/postgres/key.js';
import { Session } from '../../../../src/upstreams/postgres/session.js';

const fingerprint = new Session(
  'main',
  new Map([
    ['user', 'alice'],
    ['database', 'test'],
  ]),
).fingerprint;
const parts = { shape: 'BE', sql: 'SELECT 1', types: '', description: '', bindTail: '' };

describe('Postgres store keys', () => {
  it('keys a simple Query by fingerprint, Q and the length-prefixed SQL text', () => {
    expect(queryKey(fingerprint, 'SELECT 1')).toBe(`${fingerprint}Q8:SELECT 1`);
    expect(field('a:b')).toBe('3:a:b');
  });

  it('keeps apart what the response depends on', () => {
    const keys = [
      queryKey(fingerprint, 'SELECT 1'),
      batchKey(fingerprint, parts),
      batchKey(fingerprint, { ...parts, shape: 'BDE' }),
      batchKey(fingerprint, { ...parts, bindTail: '\u0000\u0001' }),
      batchKey(fingerprint, { ...parts, types: '\u0000\u0001\u0000\u0000\u0000\u0019' }),
      batchKey(fingerprint, { ...parts, types: '\u0000\u0001\u0000\u0000\u0000\u0014' }),
      batchKey(fingerprint, { ...parts, description: 'T1' }),
      batchKey(fingerprint, { ...parts, description: 'T2' }),
      queryKey(
        new Session(
          'main',
          new Map([
            ['user', 'bob'],
            ['database', 'test'],
          ]),
        ).fingerprint,
        'SELECT 1',
      ),
    ];
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('no field can pass for a separator: a value holding one does not meet its neighbour (9)', () => {
    const key = (s: Session) => queryKey(s.fingerprint, 'SELECT 1');
    const a = new Session(
      'main',
      new Map([
        ['user', 'u'],
        ['myapp.a', 'v'],
        ['search_path', 's2'],
      ]),
    );
    const b = new Session(
      'main',
      new Map([
        ['user', 'u'],
        ['myapp.a', 'v\u0001search_path=s2'],
      ]),
    );
    const c = new Session(
      'main',
      new Map([
        ['user', 'u'],
        ['myapp.a', 'v\u0000search_path\u0000s2'],
      ]),
    );
    expect(new Set([key(a), key(b), key(c)]).size).toBe(3);
    expect(batchKey(fingerprint, { ...parts, sql: 'a', types: 'b' })).not.toBe(batchKey(fingerprint, { ...parts, sql: 'a1:b', types: '' }));
  });
});
