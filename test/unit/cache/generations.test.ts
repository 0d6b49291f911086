import { describe, expect, it } from 'vitest';
import { Generations } from '../../../src/cache/generations.js';

describe('Generations', () => {
  it('refuses tickets taken before a bump of one of the tags, and only those', () => {
    const g = new Generations();
    const before = g.begin();
    g.bump(['a']);
    const after = g.begin();
    expect(g.unchangedSince(before, ['a'])).toBe(false);
    expect(g.unchangedSince(before, ['b'])).toBe(true);
    expect(g.unchangedSince(after, ['a'])).toBe(true);
    g.bumpAll();
    expect(g.unchangedSince(after, ['z'])).toBe(false);
  });

  it('prunes stamps no open ticket needs, and keeps those an open ticket does', () => {
    const g = new Generations();
    const open = g.begin();
    g.bump(['kept']);
    for (let i = 0; i < 70_000; i++) g.bump([`t${i}`]);
    expect(g.unchangedSince(open, ['kept'])).toBe(false);
    g.end(open);
    for (let i = 0; i < 70_000; i++) g.bump([`u${i}`]);
    expect(g.stampCount).toBeLessThan(70_000);
  });
});
