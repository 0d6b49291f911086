/** Local invalidations: applied here at once, then published on every bus for the other replicas. */
import type { InvalidationTarget } from '../cache/types.js';
import type { Millis } from '../units.js';
import { within } from './bus.js';
import type { Dispatcher } from './dispatch.js';
import type { BusRunner } from './runner.js';

/** What a local invalidation hands its caller: the entries removed here, and its publication. */
export interface LocalInvalidation {
  removed: number;
  /**
   * Settles once every publishing bus sent the message or kept it in its outbox, or after the
   * publish wait: the caller answers its client then, so that a read through another replica
   * afterwards does not meet what this one invalidated. Never rejects.
   */
  published: Promise<void>;
}

/**
 * Who else must have applied a local invalidation before the client is answered: with `workers`,
 * a worker's peers are the other workers (through the primary). Resolves once they have; may reject.
 */
export type Peers = (target: InvalidationTarget, source: string, removed: number) => Promise<unknown>;

const DONE = Promise.resolve();

/**
 * Every invalidation a replica decides itself (unsafe HTTP methods, writes seen on the PostgreSQL
 * wire, PURGE, `POST /invalidate`) comes here. Messages received from a bus do not: they go
 * straight to the dispatcher, and are never published again, so there are no loops.
 */
export class FanOut {
  readonly #dispatcher: Dispatcher;
  readonly #buses: () => readonly BusRunner[];
  readonly #waitMs: Millis;
  readonly #peers: Peers | undefined;

  /**
   * `buses` is read at each invalidation (a reload replaces them); `waitMs` bounds how long a client
   * waits for a publish; `peers` (a worker's other workers) hear of it within the same wait.
   */
  constructor(dispatcher: Dispatcher, buses: () => readonly BusRunner[], waitMs: Millis, peers?: Peers) {
    this.#dispatcher = dispatcher;
    this.#buses = buses;
    this.#waitMs = waitMs;
    this.#peers = peers;
  }

  invalidate(target: InvalidationTarget, source: string): LocalInvalidation {
    const removed = this.#dispatcher.apply(target, source);
    return { removed, published: this.spread(target, source, this.#peers, removed) };
  }

  /**
   * Tells `peers` and publishes on every bus, without applying here: the primary of `workers`
   * spreads what a worker applied itself. Settles as `LocalInvalidation.published` does.
   */
  spread(target: InvalidationTarget, source: string, peers: Peers | undefined = this.#peers, removed = 0): Promise<void> {
    if (isEmpty(target)) return DONE;
    const sends: Promise<unknown>[] = [];
    if (peers !== undefined) sends.push(peers(target, source, removed));
    for (const bus of this.#buses()) {
      const sent = bus.publish(target);
      if (sent !== undefined) sends.push(sent);
    }
    if (sends.length === 0) return DONE;
    const all = Promise.all(sends).then(() => undefined);
    return within(all, this.#waitMs, 'publishing', () => undefined).catch(() => undefined);
  }
}

function isEmpty(target: InvalidationTarget): boolean {
  return target.all !== true && (target.tags?.length ?? 0) + (target.keys?.length ?? 0) + (target.prefixes?.length ?? 0) === 0;
}
