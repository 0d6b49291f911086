/**
 * What a listener remembers besides the store, bounded in bytes by `cache.maxBytes` (docs/contracts.md,
 * "Memory"): the `Vary` names of each URL whose responses were stored, and the keys marked
 * hit-for-miss. Both grow with the number of distinct URLs clients ask for, so they are lru-caches
 * sized in bytes (the key, the value and a fixed overhead per record), never by a count; a forgotten
 * record costs one miss (Vary) or one coalesced wait (hit-for-miss), never a wrong answer.
 */
import { LRUCache } from 'lru-cache';
import type { Clock } from '../../clock.js';
import type { Bytes, Millis } from '../../units.js';

/** How long a key that answered an unshareable response skips coalescing (Varnish "hit-for-miss"). */
const HIT_FOR_MISS_MS: Millis = 10_000;

/** Shares of `cache.maxBytes` each HTTP listener may use: 1/16 for Vary names, 1/32 for hit-for-miss marks. */
export const VARY_SHARE = 16;
export const HIT_FOR_MISS_SHARE = 32;

/**
 * Heap bytes one record costs beyond its strings: lru-cache's slots (key, value, links, TTL
 * times), the Map entry, the array of names. Measured with `--expose-gc` over 20,000 records
 * (test/integration/http/bounded-memory.test.ts), rounded up.
 */
const RECORD_OVERHEAD: Bytes = 160;

/** The Vary memory and hit-for-miss marks of one listener, each bounded in bytes. */
export class SideMemory {
  readonly #vary: LRUCache<string, readonly string[]>;
  readonly #hitForMiss: LRUCache<string, true>;
  /** The bound on both together. */
  readonly limitBytes: Bytes;

  constructor(cacheMaxBytes: Bytes, clock: Clock) {
    const varyBytes = Math.max(1, Math.floor(cacheMaxBytes / VARY_SHARE));
    const hitForMissBytes = Math.max(1, Math.floor(cacheMaxBytes / HIT_FOR_MISS_SHARE));
    this.limitBytes = varyBytes + hitForMissBytes;
    this.#vary = new LRUCache<string, readonly string[]>({ maxSize: varyBytes, sizeCalculation: (names, key) => varyRecordBytes(key, names) });
    this.#hitForMiss = new LRUCache<string, true>({
      maxSize: hitForMissBytes,
      sizeCalculation: (_v, key) => stringBytes(key) + RECORD_OVERHEAD,
      ttl: HIT_FOR_MISS_MS,
      ttlAutopurge: false,
      perf: clock,
    });
  }

  /** Remembers the Vary names of a URL's stored responses (empty: no Vary). */
  learnVary(base: string, names: readonly string[]): void {
    if (names.length === 0) this.#vary.delete(base);
    else this.#vary.set(base, names);
  }

  varyOf(base: string): readonly string[] | undefined {
    return this.#vary.get(base);
  }

  markHitForMiss(key: string): void {
    this.#hitForMiss.set(key, true);
  }

  isHitForMiss(key: string): boolean {
    return this.#hitForMiss.get(key) !== undefined;
  }

  /** Bytes accounted now, for tests and the bound's documentation. */
  get accountedBytes(): Bytes {
    return this.#vary.calculatedSize + this.#hitForMiss.calculatedSize;
  }
}

function varyRecordBytes(key: string, names: readonly string[]): number {
  let bytes = stringBytes(key) + RECORD_OVERHEAD;
  for (const name of names) bytes += stringBytes(name) + 16;
  return bytes;
}

/** V8 keeps latin1 strings one byte per character and others two: count two when in doubt. */
function stringBytes(text: string): number {
  return /^[\u0000-\u00ff]*$/.test(text) ? text.length + 16 : text.length * 2 + 16;
}
