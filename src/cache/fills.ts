/**
 * Fills: one loader per key for every concurrent caller (single flight), its result stored only
 * if no invalidation since it began covers it (the fill-race guard, `generations.ts`).
 */
import type { Clock } from '../clock.js';
import type { Millis } from '../units.js';
import { channels } from '../events.js';
import { buildEntry, inSpace } from './entry.js';
import { Generations, type Ticket } from './generations.js';
import { SingleFlight, waitBounded } from './single-flight.js';
import { keyTag } from './tags.js';
import type { CacheKey, CoalescedEvent, Entry, EntryInput, FillOptions, FillOutcome, SetResult, Space, Tag } from './types.js';

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

export class Fills {
  readonly #generations = new Generations();
  readonly #flights = new SingleFlight<Shared>();
  readonly #store: object;
  readonly #clock: Clock;
  readonly #guard: boolean;
  readonly #put: (entry: Entry) => SetResult;

  /** `store` is named in events; `put` stores an entry; `guard` false turns the fill-race guard off. */
  constructor(store: object, clock: Clock, guard: boolean, put: (entry: Entry) => SetResult) {
    this.#store = store;
    this.#clock = clock;
    this.#guard = guard;
    this.#put = put;
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
      channels.coalesced.publish({ store: this.#store, key, context: options.context } satisfies CoalescedEvent);
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

  /** Stamps `tags`: fills in flight that reach one of them will not be stored. */
  stamp(tags: readonly Tag[]): void {
    this.#generations.bump(tags);
  }

  /** Stamps everything: no fill in flight will be stored. */
  stampAll(): void {
    this.#generations.bumpAll();
  }

  /** Fills in flight. */
  get size(): number {
    return this.#flights.size;
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
}

/** What one caller of a fill gets; an entry of another space than the caller's is not shared. */
function outcome<M>(shared: Shared, leader: boolean, space: Space<M> | undefined): FillOutcome<M> {
  const entry = shared.entry;
  if (entry === null || !inSpace(entry, space)) return { leader, entry: null, stored: false, reason: 'unshareable' };
  return { leader, entry, stored: shared.stored, reason: shared.reason as SetResult };
}

function remaining(timeoutMs: Millis | undefined, elapsed: Millis): Millis | undefined {
  return timeoutMs === undefined ? undefined : Math.max(0, timeoutMs - elapsed);
}
