import type { Millis } from './units.js';

/**
 * The source of time for the store, generations and policies. It is passed in, never imported,
 * so tests can move time by hand. The same object is handed to lru-cache as its `perf` option.
 *
 * Note: lru-cache treats a start time of 0 as "no TTL", so a clock must never read 0.
 */
export interface Clock {
  now(): Millis;
}

/** Monotonic milliseconds, anchored to the wall clock when the process started. */
export const realClock: Clock = {
  now: () => performance.timeOrigin + performance.now(),
};

/** A clock moved by hand, for tests and benchmarks. */
export class ManualClock implements Clock {
  #now: Millis;

  constructor(start: Millis = 1_000_000) {
    this.#now = start;
  }

  now(): Millis {
    return this.#now;
  }

  advance(ms: Millis): void {
    this.#now += ms;
  }
}
