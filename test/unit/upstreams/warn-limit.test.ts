import { describe, expect, it } from 'vitest';
import { WarnLimit } from '../../../src/upstreams/warn-limit.js';

describe('WarnLimit', () => {
  it('lets one warning per reason through per interval and says how many it held back', () => {
    let now = 0;
    const limit = new WarnLimit(10_000, () => now);
    expect(limit.admit('connect')).toEqual({ held: 0 });
    expect(limit.admit('connect')).toBeUndefined();
    expect(limit.admit('connect')).toBeUndefined();
    // Another reason has its own allowance.
    expect(limit.admit('timeout')).toEqual({ held: 0 });
    now = 10_000;
    expect(limit.admit('connect')).toEqual({ held: 2 });
  });

  it('keeps memory bounded however many distinct reasons come', () => {
    const limit = new WarnLimit(10_000, () => 0);
    for (let i = 0; i < 100_000; i++) limit.admit(`reason ${i}`);
    expect(limit.reasons).toBeLessThanOrEqual(64);
    // Past the cap the memory starts over: an early reason is admitted again rather than remembered for ever.
    expect(limit.admit('reason 0')).toEqual({ held: 0 });
  });
});
