/**
 * The `Cache-Status` field (RFC 9211, https://www.rfc-editor.org/rfc/rfc9211). One entry, ours,
 * named `sidecache`.
 */

/** RFC 9211 §2.2: why the request went to the upstream. */
export type ForwardReason = 'bypass' | 'method' | 'uri-miss' | 'vary-miss' | 'miss' | 'request' | 'stale';

export interface CacheStatus {
  hit?: boolean;
  fwd?: ForwardReason;
  /** RFC 9211 §2.3: the upstream's status, when it differs from the one sent (e.g. 304). */
  fwdStatus?: number;
  /** RFC 9211 §2.5: remaining freshness in seconds; negative when stale. */
  ttlSeconds?: number;
  stored?: boolean;
  collapsed?: boolean;
  /** RFC 9211 §2.7: a token saying why (not stored, stale served, error). */
  detail?: string;
}

export const CACHE_NAME = 'sidecache';

export function formatCacheStatus(status: CacheStatus): string {
  let out = CACHE_NAME;
  if (status.hit) out += '; hit';
  if (status.fwd !== undefined) out += `; fwd=${status.fwd}`;
  if (status.fwdStatus !== undefined) out += `; fwd-status=${status.fwdStatus}`;
  if (status.ttlSeconds !== undefined) out += `; ttl=${status.ttlSeconds}`;
  if (status.stored) out += '; stored';
  if (status.collapsed) out += '; collapsed';
  if (status.detail !== undefined) out += `; detail=${status.detail}`;
  return out;
}

/** The hit header is built on every hit: one template, no object. */
export function hitStatus(ttlSeconds: number): string {
  return `${CACHE_NAME}; hit; ttl=${ttlSeconds}`;
}
