/**
 * Decoding of the few fields sidecache needs, and encoding of the few messages it makes itself
 * (https://www.postgresql.org/docs/current/protocol-message-formats.html). Readers take a whole
 * frame (header included) and never touch sockets.
 */
import { Backend, TxStatus } from './codes.js';

/** Offset of a message's body in a typed frame. */
const BODY = 5;

function cstring(bytes: Buffer, at: number): [value: string, next: number] {
  const end = bytes.indexOf(0, at);
  if (end === -1) throw new RangeError('unterminated string');
  return [bytes.toString('utf8', at, end), end + 1];
}

/** StartupMessage: protocol version, then name/value pairs. */
export function decodeStartup(bytes: Buffer): { version: number; params: Map<string, string> } {
  const version = bytes.readInt32BE(4);
  const params = new Map<string, string>();
  let at = 8;
  while (at < bytes.length - 1) {
    const [name, next] = cstring(bytes, at);
    if (name === '') break;
    const [value, after] = cstring(bytes, next);
    params.set(name, value);
    at = after;
  }
  return { version, params };
}

export function decodeQuery(bytes: Buffer): string {
  return cstring(bytes, BODY)[0];
}

export interface ParseMessage {
  name: string;
  sql: string;
  /** Offset of the parameter type OIDs (Int16 count, then Int32 each): part of what shapes the response. */
  typesAt: number;
}

/**
 * OIDs of the types whose values are read from the catalog (regclass, regproc, regprocedure,
 * regoper, regoperator, regtype, regconfig, regdictionary, regnamespace, regrole, regcollation,
 * aclitem): a parameter of such a type is looked up when the statement runs, so its answer
 * follows DROP/CREATE that no table write announces (pg_type.h; fixed OIDs since PostgreSQL 13).
 */
const CATALOG_VALUE_TYPES = new Set([2205, 24, 2202, 2203, 2204, 2206, 3734, 3769, 4089, 4096, 4191, 1033]);

/** Whether a Parse (its parameter types from `typesAt`) declares a parameter of a type read from the catalog. */
export function parseDeclaresCatalogType(bytes: Buffer, typesAt: number): boolean {
  const count = bytes.readInt16BE(typesAt);
  for (let i = 0; i < count; i++) if (CATALOG_VALUE_TYPES.has(bytes.readInt32BE(typesAt + 2 + 4 * i))) return true;
  return false;
}

export function decodeParse(bytes: Buffer): ParseMessage {
  const [name, next] = cstring(bytes, BODY);
  const [sql, typesAt] = cstring(bytes, next);
  return { name, sql, typesAt };
}

export interface BindMessage {
  portal: string;
  statement: string;
  /** Offset where parameter formats, values and result formats begin: the part a cache key needs. */
  restAt: number;
}

export function decodeBind(bytes: Buffer): BindMessage {
  const [portal, next] = cstring(bytes, BODY);
  const [statement, restAt] = cstring(bytes, next);
  return { portal, statement, restAt };
}

/** Whether the start of a Bind holds both its names (portal, statement): what `decodeBind` reads. */
export function hasBindNames(head: Buffer): boolean {
  const end = head.indexOf(0, BODY);
  return end !== -1 && head.indexOf(0, end + 1) !== -1;
}

/**
 * Time words PostgreSQL reads as "the current time" in date/time input
 * (https://www.postgresql.org/docs/current/datatype-datetime.html#DATATYPE-DATETIME-SPECIAL-VALUES).
 * A run of letters is one field and other characters separate fields (ParseDateTime in
 * datetime.c): 'now_' and 'today12:00' read the clock, so a word ends at a non-letter, not at \b.
 */
const TIME_WORD = /(?<![a-z])(?:now|today|tomorrow|yesterday)(?![a-z])/i;

/**
 * Every time word holds a w or a y (ASCII, either case; /i maps no other latin1 letter to them),
 * so a value with neither needs no closer look: four byte scans instead of a 64 MiB string.
 */
function mayHoldTimeWord(value: Buffer): boolean {
  return value.includes(0x77) || value.includes(0x57) || value.includes(0x79) || value.includes(0x59);
}

/**
 * Whether a parameter of a Bind (its tail from `restAt`) holds a time word: bound to a date/time
 * parameter (whose type the server may infer), or cast to one, it reads the clock, so the answer
 * must not be kept. https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
export function bindReadsClock(bytes: Buffer, restAt: number): boolean {
  let at = restAt;
  at += 2 + 2 * bytes.readInt16BE(at);
  const paramCount = bytes.readInt16BE(at);
  at += 2;
  for (let i = 0; i < paramCount; i++) {
    const length = bytes.readInt32BE(at);
    at += 4;
    if (length < 0) continue;
    // Binary values are checked too: a text (or unknown) parameter in binary format is its bytes as they are.
    if (mayHoldTimeWord(bytes.subarray(at, at + length)) && TIME_WORD.test(bytes.toString('latin1', at, at + length))) return true;
    at += length;
  }
  return false;
}

/** Describe and Close: 'S' (statement) or 'P' (portal), and a name. */
export function decodeTarget(bytes: Buffer): { kind: number; name: string } {
  return { kind: bytes[BODY]!, name: cstring(bytes, BODY + 1)[0] };
}

export function decodeExecute(bytes: Buffer): { portal: string; maxRows: number } {
  const [portal, next] = cstring(bytes, BODY);
  return { portal, maxRows: bytes.readInt32BE(next) };
}

/** ReadyForQuery's transaction status: I (idle), T (in a block) or E (failed block). */
export function decodeReadyStatus(bytes: Buffer): number {
  return bytes[BODY]!;
}

export function decodeParameterStatus(bytes: Buffer): [name: string, value: string] {
  const [name, next] = cstring(bytes, BODY);
  return [name, cstring(bytes, next)[0]];
}

/** ErrorResponse / NoticeResponse: the fields sidecache reads (severity, SQLSTATE, message). */
export function decodeErrorFields(bytes: Buffer): { severity: string; code: string; message: string } {
  const fields = new Map<string, string>();
  let at = BODY;
  while (at < bytes.length && bytes[at] !== 0) {
    const type = String.fromCharCode(bytes[at]!);
    const [value, next] = cstring(bytes, at + 1);
    fields.set(type, value);
    at = next;
  }
  // V (non-localized severity) exists since 9.6; S may be translated.
  return { severity: fields.get('V') ?? fields.get('S') ?? 'ERROR', code: fields.get('C') ?? '', message: fields.get('M') ?? '' };
}

/** RowDescription: each column's name and type OID (the rest of each field is not needed here). */
export function decodeRowDescription(bytes: Buffer): { name: string; type: number }[] {
  const count = bytes.readInt16BE(BODY);
  const columns: { name: string; type: number }[] = [];
  let at = BODY + 2;
  for (let i = 0; i < count; i++) {
    const [name, next] = cstring(bytes, at);
    // Table OID (4), column number (2), then the type OID; type size (2), modifier (4), format (2) follow.
    columns.push({ name, type: bytes.readInt32BE(next + 6) });
    at = next + 18;
  }
  return columns;
}

/** DataRow: each column's text (null for NULL). */
export function decodeDataRow(bytes: Buffer): (string | null)[] {
  const count = bytes.readInt16BE(BODY);
  const values: (string | null)[] = [];
  let at = BODY + 2;
  for (let i = 0; i < count; i++) {
    const length = bytes.readInt32BE(at);
    at += 4;
    if (length < 0) {
      values.push(null);
      continue;
    }
    if (at + length > bytes.length) throw new RangeError('DataRow value past the end of the message');
    values.push(bytes.toString('utf8', at, at + length));
    at += length;
  }
  return values;
}

/** Terminate (`X`, length 4). */
const TERMINATE = Buffer.from([0x58, 0, 0, 0, 4]);

/**
 * Whether `bytes` begin with a Terminate. node-postgres's `connect(); end()` queues one before its
 * startup packet; PostgreSQL closes such a connection without a word.
 */
export function startsWithTerminate(bytes: Buffer): boolean {
  return bytes.length >= TERMINATE.length && bytes.subarray(0, TERMINATE.length).equals(TERMINATE);
}

/** `ReadyForQuery('I')`, the end of every stored response. */
export const READY_IDLE = Buffer.from([Backend.ReadyForQuery, 0, 0, 0, 5, TxStatus.Idle]);

/** A typed message from its code and body. */
export function encode(code: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(5 + body.length);
  out[0] = code;
  out.writeInt32BE(body.length + 4, 1);
  body.copy(out, 5);
  return out;
}

/** An ErrorResponse made by sidecache itself (severity, SQLSTATE, message). */
export function encodeError(severity: 'ERROR' | 'FATAL', sqlstate: string, message: string): Buffer {
  const parts = [`S${severity}`, `V${severity}`, `C${sqlstate}`, `M${message}`].map((f) => Buffer.from(`${f}\0`, 'utf8'));
  return encode(Backend.ErrorResponse, Buffer.concat([...parts, Buffer.from([0])]));
}

/** The 'N' a server answers SSLRequest / GSSENCRequest with when it does not offer encryption. */
export const REFUSE_ENCRYPTION = Buffer.from('N');

/** The 'S' that accepts an SSLRequest: TLS begins next. */
export const ACCEPT_ENCRYPTION = Buffer.from('S');

/** SSLRequest, sent to an upstream that may offer TLS. */
export const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
