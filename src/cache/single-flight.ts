import { SidecacheError } from '../errors.js';
import type { Millis } from '../units.js';

interface Flight<T> {
  readonly promise: Promise<T>;
  waiters: number;
}

/**
 * One run of a loader per key at a time; later callers share its result or its error. A caller
 * can stop waiting (deadline or signal) without affecting the run or the other callers.
 */
export class SingleFlight<T> {
  readonly #flights = new Map<string, Flight<T>>();

  /** The flight in progress for `key`, if any. */
  get(key: string): Flight<T> | undefined {
    return this.#flights.get(key);
  }

  /** Starts `run` as the flight for `key`; it is forgotten when it settles. */
  start(key: string, run: () => Promise<T>): Flight<T> {
    const flight: Flight<T> = { promise: run(), waiters: 0 };
    this.#flights.set(key, flight);
    const forget = (): void => {
      if (this.#flights.get(key) === flight) this.#flights.delete(key);
    };
    // Every caller may have given up; the rejection is still theirs to see, not the process's.
    flight.promise.then(forget, forget);
    return flight;
  }

  get size(): number {
    return this.#flights.size;
  }
}

/** `promise`, or a SC_ERR_FILL_TIMEOUT rejection once `timeoutMs` passes or `signal` aborts. */
export function waitBounded<T>(promise: Promise<T>, timeoutMs?: Millis, signal?: AbortSignal): Promise<T> {
  if (timeoutMs === undefined && signal === undefined) return promise;
  if (signal?.aborted) return Promise.reject(giveUp('the caller aborted'));
  return new Promise<T>((resolve, reject) => {
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => settle(() => reject(giveUp(`no result within ${timeoutMs}ms`))), timeoutMs);
    const onAbort = (): void => settle(() => reject(giveUp('the caller aborted')));
    signal?.addEventListener('abort', onAbort, { once: true });
    let done = false;
    function settle(fn: () => void): void {
      if (done) return;
      done = true;
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      fn();
    }
    promise.then(
      (value) => settle(() => resolve(value)),
      (err: unknown) => settle(() => reject(err)),
    );
  });
}

function giveUp(why: string): SidecacheError {
  return new SidecacheError('SC_ERR_FILL_TIMEOUT', `stopped waiting for a shared fill: ${why}`);
}
