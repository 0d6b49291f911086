import { describe, expect, it } from 'vitest';
import { Generations } from '../../../src/cache/generations.js';

/** A URL tag as long as the URLs a client may send (node:http accepts 16 KiB of head). */
const longTag = (i: number): string => `\u0000url:api\u0000/u/${i}/${'p'.repeat(4000)}`;

describe('Generations: stamps are bounded in bytes, not only by count', () => {
  it('long tags with no fill open: the stamps stay under 4 MiB', () => {
    const g = new Generations();
    for (let i = 0; i < 5_000; i++) g.bump([longTag(i)]);
    expect(g.stampBytes).toBeLessThanOrEqual(4 * 1024 * 1024);
    expect(g.stampCount).toBeLessThan(1_000);
  });

  it('long tags while a fill stays open: bounded, and that fill is refused (default deny)', () => {
    const g = new Generations();
    const open = g.begin();
    for (let i = 0; i < 5_000; i++) g.bump([longTag(i)]);
    expect(g.stampBytes).toBeLessThanOrEqual(4 * 1024 * 1024);
    expect(g.unchangedSince(open, ['unrelated'])).toBe(false);
    g.end(open);
    const later = g.begin();
    expect(g.unchangedSince(later, ['unrelated'])).toBe(true);
    g.bump([longTag(1)]);
    expect(g.unchangedSince(later, [longTag(1)])).toBe(false);
    expect(g.unchangedSince(later, [longTag(2)])).toBe(true);
  });
});
