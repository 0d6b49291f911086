import { describe, expect, it } from 'vitest';
import { TagIndex } from '../../../src/cache/tag-index.js';

/** The index as plain sets, for comparison. */
function snapshot(index: TagIndex): Map<string, string[]> {
  return new Map([...index.entries()].map(([tag, keys]) => [tag, [...keys].sort()]));
}

// Issue 14: a tag of one key holds the key itself rather than a Set; what the index answers is unchanged.
describe('TagIndex', () => {
  it('answers as a map of sets would, through random adds and removes', () => {
    const index = new TagIndex();
    const reference = new Map<string, Set<string>>();
    const entries = new Map<string, string[]>();
    let seed = 14;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let step = 0; step < 5_000; step++) {
      const key = `k${random(40)}`;
      const present = entries.get(key);
      if (present !== undefined) {
        index.remove(key, present);
        for (const tag of present) {
          reference.get(tag)!.delete(key);
          if (reference.get(tag)!.size === 0) reference.delete(tag);
        }
        entries.delete(key);
        continue;
      }
      const tags = [...new Set(Array.from({ length: random(4) }, () => `t${random(12)}`))];
      index.add(key, tags);
      for (const tag of tags) reference.set(tag, (reference.get(tag) ?? new Set()).add(key));
      entries.set(key, tags);
      for (const tag of tags) expect(index.keysOf(tag).sort()).toEqual([...reference.get(tag)!].sort());
    }
    expect(snapshot(index)).toEqual(new Map([...reference].map(([tag, keys]) => [tag, [...keys].sort()])));
    expect(index.size).toBe(reference.size);
  });

  it('keeps one key once, whatever the adds, and forgets the tag with its last key', () => {
    const index = new TagIndex();
    index.add('a', ['t', 't']);
    index.add('a', ['t']);
    expect(index.keysOf('t')).toEqual(['a']);
    index.add('b', ['t']);
    expect(index.keysOf('t').sort()).toEqual(['a', 'b']);
    index.remove('a', ['t']);
    index.remove('c', ['t']);
    expect(index.keysOf('t')).toEqual(['b']);
    index.remove('b', ['t']);
    expect(index.keysOf('t')).toEqual([]);
    expect(index.size).toBe(0);
  });
});
