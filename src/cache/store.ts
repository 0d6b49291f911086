/**
 * The store every listener shares: entries in lru-cache sized in bytes, the tag index kept with
 * them, the fill-race guard and single-flight fills (docs/architecture.md "The store").
 */
import { LRUCache } from 'lru-cache';
import type { Clock } from '../clock.js';
import type { Bytes, Millis } from '../units.js';
import { channels } from '../events.js';
import { Generations, type Ticket } from './generations.js';
import { TagIndex } from './tag-index.js';
import { keyTag, prefixTag } from './tags.js';
import { buildEntry } from './entry.js';
import { SingleFlight, waitBounded } from './single-flight.js';
import type {
  CacheKey,
  CoalescedEvent,
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

/** A fill in flight, as callers outside the store may see it. */
export interface FlightState {
  /** Callers waiting on it besides its leader. */
  readonly waiters: number;
}

/** What a finished flight hands each of its callers. */
interface Shared {
  entry: Entry | null;
  stored: boolean;
  reason: SetResult | 'unshareable';
  /** False when an invalidation since the fill began covers the entry: nobody else may use it. */
  current: boolean;
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
  readonly #generations = new Generations();
  readonly #flights = new SingleFlight<Shared>();
  #sweeper: NodeJS.Timeout | undefined;
  /** The reason reported for lru-cache's `delete`, which serves invalidation and expiry alike. */
  #deleteReason: RemovalReason = 'invalidation';
  readonly #guard: boolean;

  constructor(options: StoreOptions) {
    this.#guard = options.unsafeWithoutFillGuard !== true;
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
    if (space === undefined) return entry;
    return entry !== undefined && inSpace(entry, space) ? entry : undefined;
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
   * began. Every caller gets the result or the loader's error; errors are never stored.
   *
   * `tags` are known before loading (route tags, `table:` tags); the loader may add more.
   * The loader returns null when its result must not be shared (private, not storable): the
   * other callers then get a null entry and go upstream themselves.
   */
  async fill<M>(key: CacheKey, tags: readonly Tag[], loader: () => Promise<EntryInput<M> | null>, options: FillOptions<M> = {}): Promise<FillOutcome<M>> {
    const started = this.#clock.now();
    const inFlight = this.#flights.get(key);
    if (inFlight === undefined) {
      const flight = this.#flights.start(key, () => this.#lead(key, tags, loader, options.space));
      const shared = await waitBounded(flight.promise, options.timeoutMs, options.signal);
      return outcome(shared, true, options.space);
    }
    if (options.maxWaiters !== undefined && inFlight.waiters >= options.maxWaiters) {
      return { leader: false, entry: null, stored: false, reason: 'busy' };
    }
    inFlight.waiters++;
    if (channels.coalesced.hasSubscribers) {
      channels.coalesced.publish({ store: this, key, context: options.context } satisfies CoalescedEvent);
    }
    let shared: Shared;
    try {
      shared = await waitBounded(inFlight.promise, options.timeoutMs, options.signal);
    } finally {
      inFlight.waiters--;
    }
    if (shared.current) return outcome(shared, false, options.space);
    // The result predates an invalidation that covers it: fetch anew, within what time is left.
    const timeoutMs = remaining(options.timeoutMs, this.#clock.now() - started);
    return this.fill(key, tags, loader, { ...options, timeoutMs });
  }

  /**
   * Runs `loader` for this caller alone (no coalescing) and stores its result under the same
   * fill-race guard as `fill`. For requests that must not wait on others, such as a key known to
   * answer unshareable responses.
   */
  async fillAlone<M>(key: CacheKey, tags: readonly Tag[], loader: () => Promise<EntryInput<M> | null>, space?: Space<M>): Promise<FillOutcome<M>> {
    return outcome(await this.#lead(key, tags, loader, space), true, space);
  }

  /** The fill in flight for `key` (how many callers wait on it), or undefined when there is none. */
  flightOf(key: CacheKey): FlightState | undefined {
    return this.#flights.get(key);
  }

  /**
   * Removes what the target names and returns how many entries left. Generations are bumped
   * first, so fills already in flight for those tags will not be stored. Cost follows the
   * entries removed (plus the entries under a prefix's directory), not the cache size.
   */
  invalidate(target: InvalidationTarget): number {
    if (target.all) {
      this.#generations.bumpAll();
      const count = this.#lru.size;
      this.#lru.clear();
      return count;
    }
    const tags = target.tags ?? [];
    const keys = target.keys ?? [];
    const prefixes = target.prefixes ?? [];
    const prefixTags = prefixes.map(prefixTag).filter((t): t is Tag => t !== undefined);
    this.#generations.bump([...tags, ...prefixTags, ...keys.map(keyTag)]);

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
    return this.#flights.size;
  }

  /** The tag index, read-only (for tests and diagnostics). */
  indexedTags(): IterableIterator<[Tag, ReadonlySet<CacheKey>]> {
    return this.#tags.entries();
  }

  /** True while the store holds an entry for `key`, even one past its window not yet purged. */
  has(key: CacheKey): boolean {
    return this.#lru.peek(key, { allowStale: true }) !== undefined;
  }

  async #lead<M>(key: CacheKey, tags: readonly Tag[], loader: () => Promise<EntryInput<M> | null>, space: Space<M> | undefined): Promise<Shared> {
    const ticket = this.#generations.begin();
    try {
      const input = await loader();
      if (input === null) return { entry: null, stored: false, reason: 'unshareable', current: true };
      const entry = buildEntry(key, input, tags, space, this.#clock.now());
      const current = !this.#guard || this.#isCurrent(ticket, entry);
      const reason = current ? this.#put(entry) : 'invalidated';
      return { entry, stored: reason === 'stored', reason, current };
    } finally {
      this.#generations.end(ticket);
    }
  }

  #isCurrent(ticket: Ticket, entry: Entry): boolean {
    return this.#generations.unchangedSince(ticket, entry.tags) && this.#generations.unchangedSince(ticket, [keyTag(entry.key)]);
  }

  #put(entry: Entry): SetResult {
    const lifeMs = entry.staleUntil - entry.storedAt;
    const refusal = entry.bytes > this.maxEntryBytes ? 'too-large' : lifeMs <= 0 ? 'expired' : undefined;
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

/** What one caller of a fill gets; an entry of another space than the caller's is not shared. */
function outcome<M>(shared: Shared, leader: boolean, space: Space<M> | undefined): FillOutcome<M> {
  const entry = shared.entry;
  if (entry === null || !inSpace(entry, space)) return { leader, entry: null, stored: false, reason: 'unshareable' };
  return { leader, entry, stored: shared.stored, reason: shared.reason as SetResult };
}

/** The one place an entry's metadata type is narrowed: by the identity of the space it was stored through. */
function inSpace<M>(entry: Entry, space: Space<M> | undefined): entry is Entry<M> {
  return entry.space === space;
}

function remaining(timeoutMs: Millis | undefined, elapsed: Millis): Millis | undefined {
  return timeoutMs === undefined ? undefined : Math.max(0, timeoutMs - elapsed);
}
