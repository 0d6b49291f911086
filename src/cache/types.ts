import type { Bytes, Millis } from '../units.js';

/** A store key. Listeners namespace their keys (protocol and listener name come first). */
export type CacheKey = string;
/** A label that invalidations name, e.g. `table:accounts` or `user:42`. */
export type Tag = string;

/**
 * Why an entry left the store.
 * - `size`: evicted to stay under `cache.maxBytes`;
 * - `ttl`: its stale window ran out;
 * - `invalidation`: an invalidation named it (or `delete` was called);
 * - `replaced`: a newer entry took its key.
 */
export type RemovalReason = 'size' | 'ttl' | 'invalidation' | 'replaced';

/** Prepared bytes: one buffer (an HTTP body) or a list of pre-encoded protocol frames. */
export type Body = Buffer | readonly Buffer[];

/**
 * A kind of entry and the shape of its metadata (HTTP responses with their prepared headers,
 * Postgres results with none). An entry remembers the space it was stored through, and a read
 * through a space returns only entries of that space: the metadata's type is checked by
 * identity, not assumed by the caller.
 */
export class Space<M> {
  readonly name: string;
  /** Never set: it only carries `M`, so spaces of different metadata are different types. */
  declare readonly metaType?: M;

  constructor(name: string) {
    this.name = name;
  }
}

/** What a caller hands the store to keep. */
export type EntryInput<M = unknown> = EntryFields & (undefined extends M ? { meta?: M } : { meta: M });

interface EntryFields {
  /**
   * Store under this key instead of the fill's: an HTTP response whose `Vary` was learned only
   * when it arrived belongs under its variant's key.
   */
  key?: CacheKey;
  body: Body;
  /** The caller's estimate of `meta`'s size; it counts toward `maxBytes`. */
  metaBytes?: Bytes;
  /** Tags this entry answers to, in addition to those a fill declared up front. */
  tags?: readonly Tag[];
  /** Request path (and query) of an HTTP entry, so `prefixes` invalidations can find it. */
  path?: string;
  /** How long the entry is fresh, from now. */
  ttlMs: Millis;
  /** How long after freshness the entry may still be served stale (revalidation, errors). */
  staleMs?: Millis;
}

/** What the store keeps. Immutable once stored: a hit hands out this very object. */
export interface Entry<M = unknown> {
  readonly key: CacheKey;
  readonly body: Body;
  /** Protocol metadata, such as prepared HTTP headers. */
  readonly meta: M;
  /** The space the entry was stored through, if any (see `Space`). */
  readonly space: Space<M> | undefined;
  /** Every tag the entry answers to, path tags included. */
  readonly tags: readonly Tag[];
  readonly path: string | undefined;
  readonly storedAt: Millis;
  /** Fresh while `clock.now() < freshUntil`. */
  readonly freshUntil: Millis;
  /** Kept, and servable as stale, while `clock.now() < staleUntil`. */
  readonly staleUntil: Millis;
  /** What the entry counts toward `maxBytes`: key, tags, metadata, body and a fixed overhead. */
  readonly bytes: Bytes;
  /**
   * Lookups that found the entry (`Store.get`): hits and stale answers, for `GET /cache/entries`.
   * The one field that changes once stored: an integer, so counting costs no allocation.
   */
  hits: number;
}

/** The invalidation message contract (docs/contracts.md), after `tables` became `table:` tags. */
export interface InvalidationTarget {
  tags?: readonly Tag[];
  keys?: readonly CacheKey[];
  /** HTTP path prefixes; each starts with `/`. */
  prefixes?: readonly string[];
  all?: boolean;
}

/** Result of `Store.set`. */
export type SetResult = 'stored' | 'too-large' | 'expired' | 'invalidated' | 'bypassed';

/**
 * How the store serves while the invalidations that could reach its entries may be lost (a bus is
 * down): only entries stored less than `maxAgeMs` ago, and with 0 none at all, nothing being
 * stored either. `reason` is what answers say (Cache-Status `detail`), e.g. `bus-down`.
 */
export interface Degradation {
  readonly reason: string;
  readonly maxAgeMs: Millis;
}

/** Options of one `Store.fill` call. */
export interface FillOptions<M = unknown> {
  /** The space the result is stored in; waiters receive it only if it belongs there. */
  space?: Space<M>;
  /** Give up waiting after this long (the fill itself goes on for the others). */
  timeoutMs?: Millis;
  /** Give up waiting when this signal aborts. */
  signal?: AbortSignal;
  /** When this many callers already wait on the fill, do not join: answer `busy`. */
  maxWaiters?: number;
  /** Passed through to the `coalesced` event (protocol, listener) for metrics. */
  context?: Readonly<Record<string, string>>;
}

/**
 * Result of `Store.fill`.
 * - `entry` is the shared result, or null when there is none to share: the loader answered
 *   null (not shareable), or the fill was `busy`. A caller with a null entry goes upstream
 *   itself.
 * - `leader` is true for the one caller whose loader ran.
 */
export type FillOutcome<M = unknown> =
  { leader: boolean; entry: Entry<M>; stored: boolean; reason: SetResult } | { leader: boolean; entry: null; stored: false; reason: 'unshareable' | 'busy' };

/** Emitted on `channels.remove`. */
export interface RemovalEvent {
  store: object;
  key: CacheKey;
  reason: RemovalReason;
  bytes: Bytes;
}

/** Emitted on `channels.refused`. */
export interface RefusedEvent {
  store: object;
  key: CacheKey;
  bytes: Bytes;
}

/** Emitted on `channels.coalesced`. */
export interface CoalescedEvent {
  store: object;
  key: CacheKey;
  context: Readonly<Record<string, string>> | undefined;
}
