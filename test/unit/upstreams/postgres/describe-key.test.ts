/** Postgres keys read back for /cache/entries: session facts, SQL with literals hidden, bind values. */
import { beforeAll, describe, expect, it } from 'vitest';
import { loadParser } from '../../../../src/upstreams/postgres/classify.js';
import { describePgKey, redactSql } from '../../../../src/upstreams/postgres/describe-key.js';
import { batchKey, queryKey } from '../../../../src/upstreams/postgres/key.js';
import { TxStatus } from '../../../../src/upstreams/postgres/codes.js';
import { Session } from '../../../../src/upstreams/postgres/session.js';
import { FACTS_KEPT, sessionDigest } from '../../../../src/upstreams/postgres/session-digest.js';

beforeAll(() => loadParser());

/** A Bind tail (after the statement name): formats, values, result formats, as key.ts keeps it (latin1). */
function bindTail(formats: number[], values: (Buffer | null)[]): string {
  const parts: Buffer[] = [];
  const int16 = (n: number) => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
  parts.push(int16(formats.length), ...formats.map(int16), int16(values.length));
  for (const v of values) {
    const len = Buffer.alloc(4);
    len.writeInt32BE(v === null ? -1 : v.length);
    parts.push(len);
    if (v !== null) parts.push(v);
  }
  parts.push(int16(0));
  return Buffer.concat(parts).toString('latin1');
}

/** alice's session on `app` with a reported TimeZone and two confirmed settings (one of them secret). */
function aliceSession(): Session {
  const session = new Session(
    'main',
    new Map([
      ['user', 'alice'],
      ['database', 'app'],
      ['application_name', 'psql'],
    ]),
  );
  session.serverParameter('TimeZone', 'UTC');
  session.endRequest(
    [
      { kind: 'set', name: 'search_path', value: 'app, public' },
      { kind: 'set', name: 'app.tenant', value: 'secret-tenant' },
    ],
    false,
    TxStatus.Idle,
    TxStatus.Idle,
  );
  return session;
}

describe('redactSql', () => {
  it.each([
    ["SELECT * FROM t WHERE a = 'secret' AND b = 42 AND c = 1.5e3", 'SELECT * FROM t WHERE a = ? AND b = ? AND c = ?'],
    ["SELECT $$secret$$, $tag$x$tag$, E'\\x41', x'ff', b'101', U&'d\\0061t'", 'SELECT ? , ? , ? , ? , ? , ?'],
    ['SELECT a /* secret */ FROM t -- secret\nWHERE id = $1', 'SELECT a FROM t WHERE id = $1'],
    ['SELECT data->>\'secret\' FROM "Tab"', 'SELECT data ->> ? FROM "Tab"'],
    ["SELECT 'unterminated", '(hidden: the text does not scan)'],
  ])('%s', (sql, shown) => {
    expect(redactSql(sql)).toBe(shown);
  });
});

describe('describePgKey', () => {
  const session = aliceSession();

  it('reads a simple Query key: listener, database, user, session facts, and the SQL redacted unless revealed', () => {
    const key = queryKey(session.fingerprint, "SELECT * FROM t WHERE name = 'secret'");
    expect(describePgKey(key, false)).toEqual({
      protocol: 'postgres',
      listener: 'main',
      database: 'app',
      user: 'alice',
      session: expect.objectContaining({ application_name: 'psql', TimeZone: 'UTC', search_path: 'app, public', 'app.tenant': '(hidden)' }) as unknown,
      sessionDigest: expect.stringMatching(/^[A-Za-z0-9_-]{32}$/) as unknown,
      kind: 'simple',
      sql: 'SELECT * FROM t WHERE name = ?',
    });
    const revealed = describePgKey(key, true)!;
    expect(revealed.sql).toBe("SELECT * FROM t WHERE name = 'secret'");
    expect(revealed.session['app.tenant']).toBe('secret-tenant');
  });

  it('reads an extended batch key: bind values counted, or shown (text as text, binary as hex, NULL as null) with reveal', () => {
    const tail = bindTail([0, 1, 0], [Buffer.from('secret'), Buffer.from([1, 2]), null]);
    const key = batchKey(session.fingerprint, { shape: 'PBDES', sql: 'SELECT $1, $2, $3', types: '', description: '', bindTail: tail });
    expect(describePgKey(key, false)).toMatchObject({ kind: 'extended', sql: 'SELECT $1 , $2 , $3', parameters: 3 });
    expect(describePgKey(key, true)).toMatchObject({ parameters: ['secret', '\\x0102', null] });
  });

  it('shows the settings behind the digest while they are remembered, then only the digest (15)', () => {
    const key = queryKey(session.fingerprint, 'SELECT 1');
    const digest = describePgKey(key, false)!.sessionDigest;
    expect(key).toContain(digest);
    expect(key).not.toContain('search_path');
    for (let i = 0; i < FACTS_KEPT; i++) sessionDigest(`other ${i}`);
    expect(describePgKey(key, false)).toMatchObject({ user: 'alice', sessionDigest: digest, sql: 'SELECT ?' });
    expect(describePgKey(key, false)!.session).toEqual({});
    // A session that takes the key again (same settings) makes the settings known again.
    const again = aliceSession();
    expect(again.fingerprint).toBe(session.fingerprint);
    expect(describePgKey(key, false)!.session).toMatchObject({ search_path: 'app, public' });
  });

  it('is undefined for what is not a Postgres key, or a damaged one', () => {
    expect(describePgKey('http\u0000api\u0000/x', false)).toBeUndefined();
    expect(describePgKey('pg4:main9:x', false)).toBeUndefined();
  });
});
