/**
 * The session's settings as they go into every store key: a SHA-256 of their text instead of the
 * text, so a key is ~100 characters rather than ~500 (each key is hashed on every look-up and kept
 * with its entry). The text of the digests seen lately is kept here, so `GET /cache/entries`
 * (describe-key.ts) can still show the settings of an entry's session.
 */
import { createHash } from 'node:crypto';

/**
 * Bytes of the SHA-256 kept: 192 bits. Two sessions share entries only if their settings match, so
 * finding another session's digest must be out of reach: a second preimage of 192 bits is, and so
 * is a collision (2^96 work) between two texts one client chose.
 */
const DIGEST_BYTES = 24;

/** Distinct settings texts remembered for `sessionFacts`; the least recently digested go first. */
export const FACTS_KEPT = 4096;

/** Settings text by digest, in order of last use. */
const facts = new Map<string, string>();

/** The digest of a session's settings text (base64url), remembered for `sessionFacts`. */
export function sessionDigest(text: string): string {
  // UTF-16 code units, as the string holds them: no two texts encode alike (UTF-8 would turn any
  // lone surrogate into U+FFFD).
  const digest = createHash('sha256').update(text, 'utf16le').digest().subarray(0, DIGEST_BYTES).toString('base64url');
  // Delete first, so a digest used again moves to the end and the oldest stays first.
  facts.delete(digest);
  facts.set(digest, text);
  if (facts.size > FACTS_KEPT) facts.delete(facts.keys().next().value!);
  return digest;
}

/** The settings text a digest was made from, while it is remembered. */
export function sessionFacts(digest: string): string | undefined {
  return facts.get(digest);
}
