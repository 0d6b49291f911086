import type { CacheKey, Tag } from './types.js';

/**
 * tag → keys. The key → tags side is the entry's own `tags` list, so both sides leave together
 * when the store disposes of an entry. A tag whose last key leaves is deleted, so the index
 * never outgrows the entries it describes. A tag of one key (every entry's own URL tag, for a
 * start) holds the key itself, not a Set of one: a Set is a few hundred bytes of heap per entry
 * that the garbage collector would walk on every major collection (issue 14).
 */
export class TagIndex {
  readonly #byTag = new Map<Tag, CacheKey | Set<CacheKey>>();

  add(key: CacheKey, tags: readonly Tag[]): void {
    for (const tag of tags) {
      const keys = this.#byTag.get(tag);
      if (keys === undefined) this.#byTag.set(tag, key);
      else if (typeof keys !== 'string') keys.add(key);
      else if (keys !== key) this.#byTag.set(tag, new Set([keys, key]));
    }
  }

  remove(key: CacheKey, tags: readonly Tag[]): void {
    for (const tag of tags) {
      const keys = this.#byTag.get(tag);
      if (keys === undefined) continue;
      if (typeof keys === 'string') {
        if (keys === key) this.#byTag.delete(tag);
        continue;
      }
      keys.delete(key);
      if (keys.size === 0) this.#byTag.delete(tag);
    }
  }

  /** A copy of the keys under `tag`, safe to iterate while deleting them. */
  keysOf(tag: Tag): CacheKey[] {
    const keys = this.#byTag.get(tag);
    if (keys === undefined) return [];
    return typeof keys === 'string' ? [keys] : [...keys];
  }

  get size(): number {
    return this.#byTag.size;
  }

  *entries(): IterableIterator<[Tag, ReadonlySet<CacheKey>]> {
    for (const [tag, keys] of this.#byTag) yield [tag, typeof keys === 'string' ? new Set([keys]) : keys];
  }
}
