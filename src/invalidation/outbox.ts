/** Invalidations a bus could not carry yet, coalesced and bounded. */
import type { InvalidationTarget } from '../cache/types.js';

/**
 * The union of the targets that failed to publish. Applying a union is never weaker than applying
 * each, and an invalidation applied twice is harmless, so order and repeats do not matter. Past
 * `maxNames` names it becomes `{all: true}`: bounded memory, and still a superset.
 */
export class Outbox {
  readonly #maxNames: number;
  readonly #tags = new Set<string>();
  readonly #keys = new Set<string>();
  readonly #prefixes = new Set<string>();
  #all = false;

  constructor(maxNames: number) {
    this.#maxNames = maxNames;
  }

  add(target: InvalidationTarget): void {
    if (this.#all) return;
    if (target.all === true) return this.#becomeAll();
    for (const tag of target.tags ?? []) this.#tags.add(tag);
    for (const key of target.keys ?? []) this.#keys.add(key);
    for (const prefix of target.prefixes ?? []) this.#prefixes.add(prefix);
    if (this.size > this.#maxNames) this.#becomeAll();
  }

  /** Names waiting; `all` counts as one. */
  get size(): number {
    return this.#all ? 1 : this.#tags.size + this.#keys.size + this.#prefixes.size;
  }

  /** Everything waiting, emptying the outbox; undefined when it is empty. */
  take(): InvalidationTarget | undefined {
    if (this.size === 0) return undefined;
    const target: InvalidationTarget = this.#all ? { all: true } : { tags: [...this.#tags], keys: [...this.#keys], prefixes: [...this.#prefixes] };
    this.#all = false;
    this.#clear();
    return target;
  }

  #becomeAll(): void {
    this.#all = true;
    this.#clear();
  }

  #clear(): void {
    this.#tags.clear();
    this.#keys.clear();
    this.#prefixes.clear();
  }
}
