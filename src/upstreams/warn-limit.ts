/**
 * Rate limit for warnings of a failing upstream: one line per reason per interval, with the number
 * held back since the last one. Keyed by reason only (never by a URL, payload or message), and the
 * number of reasons kept is capped, so memory stays bounded whatever the traffic.
 */
import type { Millis } from '../units.js';

/** Reasons remembered at most; past it the memory starts over (a reason may then log once early). */
const MAX_REASONS = 64;

export class WarnLimit {
  readonly #intervalMs: Millis;
  readonly #now: () => Millis;
  readonly #seen = new Map<string, { at: Millis; held: number }>();

  constructor(intervalMs: Millis, now: () => Millis) {
    this.#intervalMs = intervalMs;
    this.#now = now;
  }

  /** Reasons remembered now (read-only, for tests). */
  get reasons(): number {
    return this.#seen.size;
  }

  /** Undefined: stay quiet this time. Otherwise log now, saying how many of this reason were held back. */
  admit(reason: string): { held: number } | undefined {
    const now = this.#now();
    const last = this.#seen.get(reason);
    if (last !== undefined && now - last.at < this.#intervalMs) {
      last.held++;
      return undefined;
    }
    if (last === undefined && this.#seen.size >= MAX_REASONS) this.#seen.clear();
    this.#seen.set(reason, { at: now, held: 0 });
    return { held: last?.held ?? 0 };
  }
}
