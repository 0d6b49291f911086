/**
 * Which misses fill the store (`postgres[].admission`): `always` stores every storable result;
 * `second-hit` stores a result only on its key's second miss within a window of recent misses, so a
 * stream of one-off lookups neither evicts what is read again nor costs a copy and a store write
 * each (TinyLFU's "doorkeeper", https://arxiv.org/abs/1512.00727, section 3.4.2).
 */

/** Decides, on a miss, whether the result of `key` is worth storing. */
export interface Admission {
  admit(key: string): boolean;
}

/** The policies `postgres[].admission` names. */
export type AdmissionPolicy = 'always' | 'second-hit';

const ALWAYS: Admission = { admit: () => true };

/** Misses remembered per generation; two generations are kept, so a key's second miss counts within 1–2 windows. */
export const SECOND_HIT_WINDOW = 65_536;

/**
 * Remembers a 30-bit hash of each missed key (a small integer: no string is kept). A collision
 * only admits a result one miss early.
 */
export class SecondHit implements Admission {
  readonly #window: number;
  #current = new Set<number>();
  #previous = new Set<number>();

  constructor(window = SECOND_HIT_WINDOW) {
    this.#window = window;
  }

  admit(key: string): boolean {
    const h = hash(key);
    if (this.#current.has(h) || this.#previous.has(h)) return true;
    if (this.#current.size >= this.#window) {
      this.#previous = this.#current;
      this.#current = new Set();
    }
    this.#current.add(h);
    return false;
  }
}

/** The admission of a listener, picked once when it is built. */
export function admission(policy: AdmissionPolicy): Admission {
  return policy === 'always' ? ALWAYS : new SecondHit();
}

/** FNV-1a over UTF-16 code units, folded to 30 bits (a V8 small integer). */
function hash(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return h & 0x3fffffff;
}
