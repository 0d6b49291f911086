import type { CacheKey, Tag } from './types.js';

/**
 * tag → keys. The key → tags side is the entry's own `tags` list, so both sides leave together
 * when the store disposes of an entry. A tag whose last key leaves is deleted, so the index
 * never outgrows the entries it describes.
 */
export class TagIndex {
  readonly #byTag = new Map<Tag, Set<CacheKey>>();

  add(key: CacheKey, tags: readonly Tag[]): void {
    for (const tag of tags) {
      let keys = this.#byTag.get(tag);
      if (keys === undefined) {
        keys = new Set();
        this.#byTag.set(tag, keys);
      }
      keys.add(key);
    }
  }

  remove(key: CacheKey, tags: readonly Tag[]): void {
    for (const tag of tags) {
      const keys = this.#byTag.get(tag);
      if (keys === undefined) continue;
      keys.delete(key);
      if (keys.size === 0) this.#byTag.delete(tag);
    }
  }

  /** A copy of the keys under `tag`, safe to iterate while deleting them. */
  keysOf(tag: Tag): CacheKey[] {
    const keys = this.#byTag.get(tag);
    return keys === undefined ? [] : [...keys];
  }

  get size(): number {
    return this.#byTag.size;
  }

  entries(): IterableIterator<[Tag, ReadonlySet<CacheKey>]> {
    return this.#byTag.entries();
  }
}
