/**
 * The store every listener shares: entries in lru-cache sized in bytes, the tag index kept with
 * them, and invalidation; fills (single flight, the fill-race guard) run in fills.ts
 * (docs/architecture.md "The store").
 */
import { LRUCache } from 'lru-cache';
import type { Clock } from '../clock.js';
import type { Bytes, Millis } from '../units.js';
import { channels } from '../events.js';
import { TagIndex } from './tag-index.js';
import { keyTag, prefixTag } from './tags.js';
import { buildEntry, inSpace } from './entry.js';
import { Fills, type FlightState } from './fills.js';
import type {
  CacheKey,
  Degradation,
  Entry,
  EntryInput,
  FillOptions,
  FillOutcome,
  InvalidationTarget,
  RefusedEvent,
  RemovalEvent,
  RemovalReason,
  SetResult,
  Space,
  Tag,
} from './types.js';

export type { FlightState } from './fills.js';

export interface StoreOptions {
  /** Hard ceiling for the bytes of all entries together. */
  maxBytes: Bytes;
  /** Entries larger than this are refused; the caller streams them through. */
  maxEntryBytes: Bytes;
  clock: Clock;
  /**
   * Turns the fill-race guard off. Only for the test that proves the guard matters; a store
   * without it may keep data older than an acknowledged invalidation.
   */
  unsafeWithoutFillGuard?: boolean;
}

const LRU_REASON: Record<LRUCache.DisposeReason, RemovalReason> = {
  evict: 'size',
  expire: 'ttl',
  set: 'replaced',
  delete: 'invalidation',
  fetch: 'invalidation',
};

/**
 * The in-memory store shared by every listener: lru-cache sized in bytes, entries that expire at
 * the end of their stale window, a tag index, the fill-race guard and single-flight fills.
 */
export class Store {
  readonly maxBytes: Bytes;
  readonly maxEntryBytes: Bytes;
  readonly #clock: Clock;
  readonly #lru: LRUCache<CacheKey, Entry>;
  readonly #tags = new TagIndex();
  readonly #fills: Fills;
  #sweeper: NodeJS.Timeout | undefined;
  /** The reason reported for lru-cache's `delete`, which serves invalidation and expiry alike. */
  #deleteReason: RemovalReason = 'invalidation';
  #degraded: Degradation | undefined;

  constructor(options: StoreOptions) {
    this.#fills = new Fills(this, options.clock, options.unsafeWithoutFillGuard !== true, (entry) => this.#put(entry));
    this.maxBytes = options.maxBytes;
    this.maxEntryBytes = Math.min(options.maxEntryBytes, options.maxBytes);
    this.#clock = options.clock;
    this.#lru = new LRUCache<CacheKey, Entry>({
      maxSize: this.maxBytes,
      maxEntrySize: this.maxEntryBytes,
      sizeCalculation: (entry) => entry.bytes,
      ttlAutopurge: false,
      // The clock is read on every check: a cached "now" would lag behind a manual clock.
      ttlResolution: 0,
      perf: this.#clock,
      dispose: (entry, key, reason) => this.#onDispose(entry, key, reason === 'delete' ? this.#deleteReason : LRU_REASON[reason]),
    });
  }

  /**
   * The entry for `key` while it is fresh or within its stale window; see `isFresh`. With a
   * space, only an entry stored through that space.
   */
  get(key: CacheKey): Entry | undefined;
  get<M>(key: CacheKey, space: Space<M>): Entry<M> | undefined;
  get<M>(key: CacheKey, space?: Space<M>): Entry<M> | Entry | undefined {
    const entry = this.#lru.get(key);
    if (entry === undefined || (space !== undefined && !inSpace(entry, space))) return undefined;
    // The gate both protocols read through: while degraded, an entry too old is not there.
    if (this.#degraded !== undefined && !this.#servable(entry, this.#degraded)) return undefined;
    entry.hits++;
    return entry;
  }

  /**
   * Serves only entries younger than `degradation.maxAgeMs` (none, and stores nothing, at 0) until
   * called again with undefined. Set while a bus is down (`whileDown`); entries are kept meanwhile.
   */
  degrade(degradation: Degradation | undefined): void {
    this.#degraded = degradation;
  }

  /** The degradation in force, if any. */
  get degradation(): Degradation | undefined {
    return this.#degraded;
  }

  /** Degraded so that nothing is served or stored: callers go upstream without joining fills. */
  get bypassing(): boolean {
    return this.#degraded?.maxAgeMs === 0;
  }

  /** Whether `get(key)` missed only because of the degradation (for the answer's reason). */
  withholds(key: CacheKey): boolean {
    return this.#degraded !== undefined && this.#lru.peek(key) !== undefined;
  }

  isFresh(entry: Entry): boolean {
    return this.#clock.now() < entry.freshUntil;
  }

  /** Stores `input` under `key` unconditionally (no fill-race guard). */
  set<M>(key: CacheKey, input: EntryInput<M>, space?: Space<M>): SetResult {
    return this.#put(buildEntry(key, input, [], space, this.#clock.now()));
  }

  /**
   * Runs `loader` once for all concurrent callers of `key` and stores what it returns, unless an
   * invalidation of one of the result's tags (or of the key, or `all`) happened after the fill
   * began (`fills.ts`). Every caller gets the result or the loader's error; errors are never stored.
   */
  fill<M>(key: CacheKey, tags: readonly Tag[], loader: () => Promise<EntryInput<M> | null>, options: FillOptions<M> = {}): Promise<FillOutcome<M>> {
    return this.#fills.fill(key, tags, loader, options);
  }

  /** Runs `loader` for this caller alone (no coalescing), under the same fill-race guard as `fill`. */
  fillAlone<M>(key: CacheKey, tags: readonly Tag[], loader: () => Promise<EntryInput<M> | null>, space?: Space<M>): Promise<FillOutcome<M>> {
    return this.#fills.fillAlone(key, tags, loader, space);
  }

  /** The fill in flight for `key` (how many callers wait on it), or undefined when there is none. */
  flightOf(key: CacheKey): FlightState | undefined {
    return this.#fills.flightOf(key);
  }

  /**
   * Removes what the target names and returns how many entries left. Generations are bumped
   * first, so fills already in flight for those tags will not be stored. Cost follows the
   * entries removed (plus the entries under a prefix's directory), not the cache size.
   */
  invalidate(target: InvalidationTarget): number {
    if (target.all) {
      this.#fills.stampAll();
      const count = this.#lru.size;
      this.#lru.clear();
      return count;
    }
    const tags = target.tags ?? [];
    const keys = target.keys ?? [];
    const prefixes = target.prefixes ?? [];
    const prefixTags = prefixes.map(prefixTag).filter((t): t is Tag => t !== undefined);
    this.#fills.stamp([...tags, ...prefixTags, ...keys.map(keyTag)]);

    let removed = 0;
    for (const tag of tags) {
      for (const key of this.#tags.keysOf(tag)) if (this.#lru.delete(key)) removed++;
    }
    for (const key of keys) if (this.#lru.delete(key)) removed++;
    for (const prefix of prefixes) removed += this.#removePrefix(prefix);
    return removed;
  }

  /** Drops every entry past its stale window; returns how many. */
  purgeStale(): number {
    const before = this.#lru.size;
    this.#lru.purgeStale();
    return before - this.#lru.size;
  }

  /** Purges expired entries every `intervalMs` so they stop holding memory. */
  startSweeper(intervalMs: Millis): void {
    this.stopSweeper();
    this.#sweeper = setInterval(() => this.purgeStale(), intervalMs);
    this.#sweeper.unref();
  }

  stopSweeper(): void {
    if (this.#sweeper !== undefined) clearInterval(this.#sweeper);
    this.#sweeper = undefined;
  }

  get size(): number {
    return this.#lru.size;
  }

  get bytes(): Bytes {
    return this.#lru.calculatedSize;
  }

  /** Fills in flight (for tests and diagnostics). */
  get inFlight(): number {
    return this.#fills.size;
  }

  /** The tag index, read-only (for tests and diagnostics). */
  indexedTags(): IterableIterator<[Tag, ReadonlySet<CacheKey>]> {
    return this.#tags.entries();
  }

  /**
   * Every key held now, least recently used last (one array: a few milliseconds per 100,000
   * entries). `GET /cache/entries` copies them at once, then reads them with `peek` in slices.
   */
  keys(): CacheKey[] {
    return Array.from(this.#lru.keys());
  }

  /** The entry for `key` while it is within its window, without counting a hit or touching its recency. */
  peek(key: CacheKey): Entry | undefined {
    return this.#lru.peek(key);
  }

  /** True while the store holds an entry for `key`, even one past its window not yet purged. */
  has(key: CacheKey): boolean {
    return this.#lru.peek(key, { allowStale: true }) !== undefined;
  }

  #put(entry: Entry): SetResult {
    const lifeMs = entry.staleUntil - entry.storedAt;
    const refusal = entry.bytes > this.maxEntryBytes ? 'too-large' : lifeMs <= 0 ? 'expired' : this.bypassing ? 'bypassed' : undefined;
    if (refusal !== undefined) {
      // A newer answer exists that we do not keep: the older one must not be served instead.
      this.#remove(entry.key, 'replaced');
      if (refusal === 'too-large' && channels.refused.hasSubscribers) {
        channels.refused.publish({ store: this, key: entry.key, bytes: entry.bytes } satisfies RefusedEvent);
      }
      return refusal;
    }
    // lru-cache expires when `now - start > ttl`; starting 1ms early makes that `now >= staleUntil`
    // on a millisecond clock (and at most 1ms early on a finer one), so a hit needs no check of its own.
    this.#lru.set(entry.key, entry, { ttl: lifeMs, start: entry.storedAt - 1 });
    // Tags are added after set(): replacing an entry first disposes the old one's tags.
    this.#tags.add(entry.key, entry.tags);
    return 'stored';
  }

  #servable(entry: Entry, degradation: Degradation): boolean {
    return this.#clock.now() - entry.storedAt < degradation.maxAgeMs;
  }

  #remove(key: CacheKey, reason: RemovalReason): boolean {
    this.#deleteReason = reason;
    try {
      return this.#lru.delete(key);
    } finally {
      this.#deleteReason = 'invalidation';
    }
  }

  #removePrefix(prefix: string): number {
    const tag = prefixTag(prefix);
    if (tag === undefined) return 0;
    let removed = 0;
    for (const key of this.#tags.keysOf(tag)) {
      const entry = this.#lru.peek(key, { allowStale: true });
      if (entry?.path?.startsWith(prefix) && this.#lru.delete(key)) removed++;
    }
    return removed;
  }

  #onDispose(entry: Entry, key: CacheKey, reason: RemovalReason): void {
    this.#tags.remove(key, entry.tags);
    if (channels.remove.hasSubscribers) {
      channels.remove.publish({ store: this, key, reason, bytes: entry.bytes } satisfies RemovalEvent);
    }
  }
}
