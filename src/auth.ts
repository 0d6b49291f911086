/** Bearer tokens, for the admin server and for PURGE on HTTP listeners. */
import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * `Authorization: Bearer <token>` against the configured token, in constant time (both sides are
 * hashed first, so neither the token's length nor its prefix leaks through timing).
 */
export function hasBearer(header: string | undefined, token: string): boolean {
  if (header === undefined) return false;
  const match = /^Bearer\s+(.+)$/i.exec(header.trim());
  if (match === null) return false;
  return timingSafeEqual(digest(match[1]!), digest(token));
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}
