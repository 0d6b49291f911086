import { describe, expect, it } from 'vitest';
import { BIND_DIGEST_FROM, batchKey, bindDigest, field, queryKey } from '../../../../src/upstreams/postgres/key.js';
import { TxStatus } from '../../../../src/upstreams/postgres/codes.js';
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

describe('Postgres store keys: the session part (15)', () => {
  /** A session as a server leaves it at startup, with `sets` confirmed, and `reported` ParameterStatus values. */
  const session = (sets: Record<string, string> = {}, reported: Record<string, string> = {}, user = 'alice') => {
    const s = new Session(
      'main',
      new Map([
        ['user', user],
        ['database', 'test'],
        ['application_name', 'psql'],
      ]),
    );
    const status = { TimeZone: 'UTC', DateStyle: 'ISO, MDY', client_encoding: 'UTF8', standard_conforming_strings: 'on', ...reported };
    for (const [name, value] of Object.entries(status)) s.serverParameter(name, value);
    const effects = Object.entries(sets).map(([name, value]) => ({ kind: 'set' as const, name, value }));
    s.endRequest(effects, false, TxStatus.Idle, TxStatus.Idle);
    return s;
  };

  it('is listener, database and user as text, then a 192-bit digest of the settings', () => {
    const s = session({ search_path: 'app, public', 'app.tenant': 'x'.repeat(1000) });
    expect(s.fingerprint).toMatch(/^pg4:main4:test5:alice32:[A-Za-z0-9_-]{32}$/);
    expect(queryKey(s.fingerprint, 'SELECT 1').length).toBeLessThan(80);
  });

  it('is the same for sessions with the same settings, and differs when any one setting does', () => {
    const base = { search_path: 'public', work_mem: '4MB', 'app.tenant': 'a' };
    expect(session(base).fingerprint).toBe(session({ ...base }).fingerprint);
    const fingerprints = [
      session(base),
      session({ ...base, search_path: 'app, public' }),
      session({ ...base, work_mem: '8MB' }),
      session({ ...base, 'app.tenant': 'b' }),
      session({ ...base, role: 'reader' }),
      session(base, { TimeZone: 'Europe/Paris' }),
      session(base, {}, 'bob'),
    ].map((s) => s.fingerprint);
    expect(new Set(fingerprints).size).toBe(fingerprints.length);
  });

  it('is computed again once a setting changes', () => {
    const s = session();
    const before = s.fingerprint;
    s.endRequest([{ kind: 'set', name: 'search_path', value: 'app' }], false, TxStatus.Idle, TxStatus.Idle);
    expect(s.fingerprint).not.toBe(before);
    s.endRequest([{ kind: 'set', name: 'search_path', value: undefined }], false, TxStatus.Idle, TxStatus.Idle);
    expect(s.fingerprint).toBe(before);
  });
});

describe('Postgres store keys: long Bind tails', () => {
  const tail = (size: number, last: number) => {
    const bytes = Buffer.alloc(size + 3, 0x61);
    bytes[bytes.length - 1] = last;
    return bytes;
  };

  it('holds a tail up to the limit as it is, and a longer one as its SHA-256, not the bytes', () => {
    expect(bindDigest(tail(BIND_DIGEST_FROM, 1), 3)).toBeUndefined();
    const long = tail(16 * 1024 * 1024, 1);
    const digest = bindDigest(long, 3)!;
    expect(digest).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    const key = batchKey(fingerprint, { ...parts, bindDigest: digest });
    expect(key.length).toBeLessThan(fingerprint.length + 100);
  });

  it('keeps apart long tails that differ in one byte, and a digest from a short tail of the same bytes', () => {
    const a = bindDigest(tail(100_000, 1), 3)!;
    const b = bindDigest(tail(100_000, 2), 3)!;
    const keys = [
      batchKey(fingerprint, { ...parts, bindDigest: a }),
      batchKey(fingerprint, { ...parts, bindDigest: b }),
      batchKey(fingerprint, { ...parts, bindTail: a }),
      batchKey(fingerprint, { ...parts, bindTail: `#${field(a)}` }),
    ];
    expect(new Set(keys).size).toBe(keys.length);
  });
});
