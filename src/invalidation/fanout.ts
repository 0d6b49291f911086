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

  /** `buses` is read at each invalidation (a reload replaces them); `waitMs` bounds how long a client waits for a publish. */
  constructor(dispatcher: Dispatcher, buses: () => readonly BusRunner[], waitMs: Millis) {
    this.#dispatcher = dispatcher;
    this.#buses = buses;
    this.#waitMs = waitMs;
  }

  invalidate(target: InvalidationTarget, source: string): LocalInvalidation {
    const removed = this.#dispatcher.apply(target, source);
    if (isEmpty(target)) return { removed, published: DONE };
    const sends: Promise<void>[] = [];
    for (const bus of this.#buses()) {
      const sent = bus.publish(target);
      if (sent !== undefined) sends.push(sent);
    }
    if (sends.length === 0) return { removed, published: DONE };
    const all = Promise.all(sends).then(() => undefined);
    return { removed, published: within(all, this.#waitMs, 'publishing', () => undefined).catch(() => undefined) };
  }
}

function isEmpty(target: InvalidationTarget): boolean {
  return target.all !== true && (target.tags?.length ?? 0) + (target.keys?.length ?? 0) + (target.prefixes?.length ?? 0) === 0;
}
