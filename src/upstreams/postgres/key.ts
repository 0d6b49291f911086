/**
 * Store keys of Postgres entries. Every key starts with the session's fingerprint (listener,
 * database, user, and the digest of the startup parameters, reported and confirmed settings, see
 * session.ts and session-digest.ts); then comes
 * what the client sent that shapes the response bytes: a simple Query's SQL text, or an extended
 * batch's shape, SQL text, Parse parameter types, the statement's row description when the batch
 * does not Parse, and the Bind tail (parameter formats, values and result formats; a long one as
 * its SHA-256). Every field is length-prefixed, so no value can pass for a separator.
 */

import { createHash } from 'node:crypto';

/**
 * Bind tails longer than this are in the key as their SHA-256: a key is kept with its entry and
 * compared on lookups, so it must not hold a 64 MiB parameter. Shorter ones stay as they are.
 */
export const BIND_DIGEST_FROM = 4096;

/** The SHA-256 of a long Bind tail (`bytes` from `at`), for `BatchKeyParts.bindDigest`; undefined for a short one. */
export function bindDigest(bytes: Buffer, at: number): string | undefined {
  if (bytes.length - at <= BIND_DIGEST_FROM) return undefined;
  return createHash('sha256').update(bytes.subarray(at)).digest('base64');
}

/** One key field: its length, a colon, the value. */
export function field(value: string): string {
  return `${value.length}:${value}`;
}

/** The key of a simple Query (`Q`). */
export function queryKey(fingerprint: string, sql: string): string {
  return `${fingerprint}Q${field(sql)}`;
}

/** What makes an extended batch's response, besides the session. */
export interface BatchKeyParts {
  /** P?S?BD?E: which messages, so which frames the response holds. */
  shape: string;
  sql: string;
  /** The Parse's parameter type OIDs (count and list), as bytes. */
  types: string;
  /** The RowDescription/NoData the statement was described with, for a batch that does not Parse. */
  description: string;
  /** The Bind's bytes after the statement name: parameter formats, values, result formats. */
  bindTail: string;
  /** Instead of `bindTail` when that is long: its SHA-256 (`bindDigest`), marked so no tail can pass for it. */
  bindDigest?: string | undefined;
}

/** The key of an extended batch. */
export function batchKey(fingerprint: string, parts: BatchKeyParts): string {
  const bind = parts.bindDigest === undefined ? field(parts.bindTail) : `#${field(parts.bindDigest)}`;
  return `${fingerprint}X${field(parts.shape)}${field(parts.sql)}${field(parts.types)}${field(parts.description)}${bind}`;
}
