/**
 * A Postgres store key read back for people (`GET /cache/entries`): the session facts and the
 * statement `key.ts` wrote, with literals and bind values hidden unless the caller may see them.
 */
import { scanSync } from 'libpg-query';
import { sessionFacts } from './session-digest.js';

/** What one Postgres key holds, readable. */
export interface PgKeyDescription {
  protocol: 'postgres';
  listener: string;
  database: string;
  user: string;
  /**
   * Startup parameters, reported parameters (ParameterStatus) and confirmed settings, by name; empty
   * once the process no longer remembers the settings of `sessionDigest` (session-digest.ts).
   */
  session: Record<string, string>;
  /** The digest of the session's settings, as the key holds it: entries of sessions alike share it. */
  sessionDigest: string;
  /** `simple` (a Query) or `extended` (Parse/Bind/Execute). */
  kind: 'simple' | 'extended';
  /** The SQL text; without `reveal`, constants are `?` and comments are gone (`redactSql`). */
  sql: string;
  /** Bind values (extended only): text-format ones as text, binary ones as `\x` hex, NULL as null; without `reveal`, only how many. */
  parameters?: (string | null)[] | number;
}

/** Reads one length-prefixed field (`key.ts` `field`) at `at`; undefined when the text is not one. */
function readField(key: string, at: number): { value: string; next: number } | undefined {
  const colon = key.indexOf(':', at);
  if (colon === -1) return undefined;
  const length = Number(key.slice(at, colon));
  if (!Number.isInteger(length) || length < 0 || colon + 1 + length > key.length) return undefined;
  return { value: key.slice(colon + 1, colon + 1 + length), next: colon + 1 + length };
}

function readFields(key: string, at: number, count: number): { values: string[]; next: number } | undefined {
  const values: string[] = [];
  for (let i = 0; i < count; i++) {
    const f = readField(key, at);
    if (f === undefined) return undefined;
    values.push(f.value);
    at = f.next;
  }
  return { values, next: at };
}

function readPairs(key: string, at: number, into: Record<string, string>, reveal: boolean): number | undefined {
  const count = readField(key, at);
  if (count === undefined) return undefined;
  const pairs = readFields(key, count.next, Number(count.value) * 2);
  if (pairs === undefined) return undefined;
  for (let i = 0; i < pairs.values.length; i += 2) {
    const name = pairs.values[i]!;
    // Custom settings (`app.user_id`, or set through the startup `options`) are where applications
    // put identities: their values only with reveal.
    into[name] = reveal || !(name.includes('.') || name === 'options') ? readable(pairs.values[i + 1]!) : '(hidden)';
  }
  return pairs.next;
}

/**
 * Internal markers (`session.ts`) start with NUL and are shown by name; a SET's value is kept as its
 * parse tree (the list of constants), shown as PostgreSQL would list them (`public, app`).
 */
function readable(value: string): string {
  if (value.startsWith('\u0000')) return `(${value.slice(1)})`;
  if (!value.startsWith('[')) return value;
  try {
    const items = JSON.parse(value) as { A_Const?: Record<string, Record<string, unknown> | undefined> }[];
    return items.map((item) => constantText(item.A_Const)).join(', ');
  } catch {
    // Not a list of constants: shown as the key holds it.
    return value;
  }
}

function constantText(constant: Record<string, Record<string, unknown> | undefined> | undefined): string {
  if (constant === undefined) throw new Error('not a constant');
  for (const kind of ['sval', 'ival', 'fval', 'boolval'] as const) {
    const inner = constant[kind];
    if (inner !== undefined) return String(inner[kind] ?? (kind === 'ival' ? 0 : kind === 'boolval' ? false : ''));
  }
  throw new Error('not a constant');
}

/**
 * The settings behind a session digest (session.ts: the epoch, then startup parameters, reported
 * parameters and confirmed settings as pairs), by name; empty when they are no longer remembered.
 */
function readSession(digest: string, reveal: boolean): Record<string, string> {
  const text = sessionFacts(digest);
  const session: Record<string, string> = {};
  if (text === undefined) return session;
  let at = readField(text, 0)?.next;
  for (let i = 0; i < 3 && at !== undefined; i++) at = readPairs(text, at, session, reveal);
  return session;
}

/** The description of a Postgres key, or undefined when `key` is not one. */
export function describePgKey(key: string, reveal: boolean): PgKeyDescription | undefined {
  if (!key.startsWith('pg')) return undefined;
  const head = readFields(key, 2, 4);
  if (head === undefined) return undefined;
  const [listener, database, user, sessionDigest] = head.values as [string, string, string, string];
  const session = readSession(sessionDigest, reveal);
  const at = head.next;
  const kind = key[at];
  if (kind === 'Q') {
    const sql = readField(key, at + 1);
    if (sql === undefined) return undefined;
    return { protocol: 'postgres', listener, database, user, session, sessionDigest, kind: 'simple', sql: reveal ? sql.value : redactSql(sql.value) };
  }
  if (kind !== 'X') return undefined;
  const parts = readFields(key, at + 1, 5);
  if (parts === undefined) return undefined;
  const [, sql, , , bindTail] = parts.values as [string, string, string, string, string];
  const values = bindValues(bindTail);
  return {
    protocol: 'postgres',
    listener,
    database,
    user,
    session,
    sessionDigest,
    kind: 'extended',
    sql: reveal ? sql : redactSql(sql),
    parameters: reveal ? values : values.length,
  };
}

/**
 * The Bind's parameter values (its bytes after the statement name, kept as latin1 in the key): an
 * Int16 count of formats and the formats, an Int16 count of values, each an Int32 length (-1 for
 * NULL) and its bytes (https://www.postgresql.org/docs/current/protocol-message-formats.html, Bind).
 */
function bindValues(tail: string): (string | null)[] {
  const bytes = Buffer.from(tail, 'latin1');
  const values: (string | null)[] = [];
  try {
    const formatCount = bytes.readInt16BE(0);
    const formats: number[] = [];
    for (let i = 0; i < formatCount; i++) formats.push(bytes.readInt16BE(2 + i * 2));
    let at = 2 + formatCount * 2;
    const count = bytes.readInt16BE(at);
    at += 2;
    for (let i = 0; i < count; i++) {
      const length = bytes.readInt32BE(at);
      at += 4;
      if (length < 0) {
        values.push(null);
        continue;
      }
      const value = bytes.subarray(at, at + length);
      at += length;
      const format = formats.length === 1 ? formats[0] : (formats[i] ?? 0);
      values.push(format === 1 ? `\\x${value.toString('hex')}` : value.toString('utf8'));
    }
  } catch {
    // A tail shorter than it says (not a Bind sidecache wrote): what was read so far.
  }
  return values;
}

/** Tokens kept as they are when hiding literals: names, keywords, `$n`, punctuation and operators. */
const KEPT_TOKENS = new Set(['IDENT', 'PARAM', 'Op', 'TYPECAST', 'DOT_DOT', 'COLON_EQUALS', 'EQUALS_GREATER', 'LESS_EQUALS', 'GREATER_EQUALS', 'NOT_EQUALS']);

/** An operator spelled with operator characters only (`->>`, `@>`): the scanner reports some as UNKNOWN. */
const OPERATOR = /^[+\-*/<>=~!@#%^&|`?]+$/;

/**
 * A SQL text with every constant (strings, numbers, bit strings, dollar-quoted bodies) as `?` and
 * comments removed, read by PostgreSQL's own scanner. Default deny: a token not known to be a name,
 * keyword, parameter or punctuation is hidden, and a text that does not scan is not shown at all.
 */
export function redactSql(sql: string): string {
  if (sql.length > REDACTED_TEXT_MAX) return redact(sql);
  let shown = REDACTED.get(sql);
  if (shown === undefined) {
    // The memo is a convenience for listings of many entries of one text; it starts over when full.
    if (REDACTED.size >= REDACTED_MAX) REDACTED.clear();
    shown = redact(sql);
    REDACTED.set(sql, shown);
  }
  return shown;
}

/** Redacted texts by SQL text, for `redactSql`. */
const REDACTED = new Map<string, string>();
const REDACTED_MAX = 1000;
/** Longer texts are not kept in the memo, so it holds 4 MiB at most. */
const REDACTED_TEXT_MAX = 4096;

function redact(sql: string): string {
  let tokens;
  try {
    tokens = scanSync(sql).tokens;
  } catch {
    // Not SQL the scanner reads: nothing of it is shown.
    return '(hidden: the text does not scan)';
  }
  const out: string[] = [];
  for (const t of tokens) {
    if (t.tokenName === 'C_COMMENT' || t.tokenName === 'SQL_COMMENT') continue;
    out.push(t.keywordKind !== 0 || KEPT_TOKENS.has(t.tokenName) || t.tokenName.startsWith('ASCII_') || OPERATOR.test(t.text) ? t.text : '?');
  }
  return out.join(' ');
}
