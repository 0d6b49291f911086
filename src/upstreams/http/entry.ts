/**
 * What an HTTP entry is: the metadata kept beside the body, prepared at store time so that a hit is
 * a lookup and one write, and the arithmetic of its age and freshness.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Millis } from '../../units.js';
import { type Entry, Space } from '../../cache/types.js';
import { headerBytes } from './headers.js';

/** What an HTTP entry keeps beside its body: everything a hit needs, prepared at store time. */
export interface HttpMeta {
  status: number;
  /** Field list of a full answer, ending in the `age` and `cache-status` slots a hit fills in. */
  headers: string[];
  /** Field list of a 304 answer (RFC 9110 §15.4.5), with the same two slots at the end. */
  notModified: string[];
  /** Age in seconds when stored (RFC 9111 §4.2.3). */
  ageBase: number;
  etag: string | undefined;
  lastModified: string | undefined;
  /** Until when a stale copy is served at once while one refresh runs. */
  swrUntil: Millis;
  /** Until when a stale copy is served if the upstream fails. */
  sieUntil: Millis;
  /** May answer a request that carries Authorization (RFC 9111 §3.5). */
  authorizedReuse: boolean;
  /** Never served stale without revalidation, whatever the request allows (RFC 9111 §4.2.4). */
  noStale: boolean;
  /** Lower-case names from the response's Vary. */
  vary: readonly string[];
  /**
   * The stored response's fields as the upstream sent them (Set-Cookie removed), which a 304
   * updates; the policy a revalidation asks is rebuilt from them (`storedPolicy`), not kept.
   */
  responseHeaders: IncomingHttpHeaders;
}

export type HttpEntry = Entry<HttpMeta>;

/** Every HTTP listener's entries. */
export const HTTP_SPACE = new Space<HttpMeta>('http');

/** Fields a 304 carries from the stored response (RFC 9110 §15.4.5). */
const NOT_MODIFIED_FIELDS = new Set(['cache-control', 'content-location', 'date', 'etag', 'expires', 'vary', 'via']);

/**
 * Prepares the field lists for hits: the client-facing fields without Content-Length (set from
 * the stored body) plus two trailing slots.
 */
export function prepareHeaders(fields: readonly string[], bodyLength: number): { headers: string[]; notModified: string[]; bytes: number } {
  const headers: string[] = [];
  const notModified: string[] = [];
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!;
    if (name === 'content-length') continue;
    headers.push(name, fields[i + 1]!);
    if (NOT_MODIFIED_FIELDS.has(name)) notModified.push(name, fields[i + 1]!);
  }
  headers.push('content-length', String(bodyLength), 'age', '', 'cache-status', '');
  notModified.push('age', '', 'cache-status', '');
  return { headers, notModified, bytes: headerBytes(headers) + headerBytes(notModified) };
}

/** The entry's current age in whole seconds. */
export function ageOf(entry: HttpEntry, now: Millis): number {
  return Math.floor(entry.meta.ageBase + (now - entry.storedAt) / 1000);
}

/** Remaining freshness in whole seconds; negative once stale (RFC 9211 §2.5). */
export function ttlOf(entry: HttpEntry, now: Millis): number {
  return Math.floor((entry.freshUntil - now) / 1000);
}

/** The stored body as one buffer: HTTP entries store one, and a frame list is joined rather than assumed away. */
export function bodyOf(entry: HttpEntry): Buffer {
  const body = entry.body;
  return Buffer.isBuffer(body) ? body : Buffer.concat(body);
}
