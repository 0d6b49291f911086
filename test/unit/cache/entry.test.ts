/** Entry tags: deduplicated, and a caller's frozen array shared by its entries instead of copied (issue 15). */
import { describe, expect, it } from 'vitest';
import { buildEntry } from '../../../src/cache/entry.js';

const input = (tags?: string[], path?: string) => ({ body: Buffer.from('x'), ttlMs: 1000, tags, path });

describe('buildEntry tags', () => {
  it('shares a frozen declared array when it already is the answer', () => {
    const declared = Object.freeze(['table:a', 'pgdb:test']);
    const a = buildEntry('k1', input(['table:a']), declared, undefined, 0);
    const b = buildEntry('k2', input(), declared, undefined, 0);
    expect(a.tags).toBe(declared);
    expect(b.tags).toBe(declared);
  });

  it('copies when the array is not frozen, has duplicates, misses an added tag, or a path adds tags', () => {
    const cases: [readonly string[], string[] | undefined, string | undefined, string[]][] = [
      [['table:a', 'pgdb:test'], undefined, undefined, ['table:a', 'pgdb:test']],
      [Object.freeze(['table:a', 'table:a']), undefined, undefined, ['table:a']],
      [Object.freeze(['table:a']), ['table:b'], undefined, ['table:a', 'table:b']],
      [Object.freeze(['t']), undefined, '/x', ['t', 'path:/']],
    ];
    for (const [declared, added, path, expected] of cases) {
      const entry = buildEntry('k', input(added, path), declared, undefined, 0);
      expect(entry.tags).not.toBe(declared);
      expect(entry.tags).toEqual(expect.arrayContaining(expected));
      expect(new Set(entry.tags).size).toBe(entry.tags.length);
    }
  });
});
