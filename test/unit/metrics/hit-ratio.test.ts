/** One hit ratio (issue 18 point 3): the code, /cache, the live page, the dashboard and the alerts agree. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { LIVE_PAGE, RatioWindow } from '../../../src/admin/live.js';
import { HIT_RATIO } from '../../../src/metrics/definitions.js';
import { HIT_RATIO_MATCHERS, hitRatio } from '../../../src/metrics/hit-ratio.js';

const read = (path: string): string => readFileSync(new URL(`../../../${path}`, import.meta.url), 'utf8');

describe('the hit ratio', () => {
  it('is (hit + stale) / (hit + stale + miss), null before any answer could have come from memory', () => {
    expect(HIT_RATIO).toEqual({ served: ['hit', 'stale'], answered: ['hit', 'stale', 'miss'] });
    expect(hitRatio({ hit: 6, stale: 2, miss: 2, bypass: 100, error: 100 })).toBe(0.8);
    expect(hitRatio({ bypass: 5 })).toBeNull();
  });

  it('the dashboard and the alerts divide the same results', () => {
    for (const file of ['examples/grafana/sidecache.json', 'examples/prometheus/alerts.yaml']) {
      const text = read(file).replaceAll('\\"', '"');
      const ratios = [
        ...text.matchAll(/sidecache_requests_total\{(result[^}]*)\}[^/]*\/\s*sum(?: by \([^)]*\))?\s*\(rate\(sidecache_requests_total\{(result[^}]*)\}/g),
      ];
      expect(ratios.length, file).toBeGreaterThan(0);
      for (const [, served, answered] of ratios) expect([served, answered], file).toEqual([HIT_RATIO_MATCHERS.served, HIT_RATIO_MATCHERS.answered]);
    }
  });

  it('the live page shows the ratios the server computes with hitRatio, and computes none of its own', () => {
    expect(LIVE_PAGE).toContain('d.lastMinute.overall');
    expect(LIVE_PAGE).not.toMatch(/l\.hit \+ l\.stale/);
    expect(LIVE_PAGE).toContain('(hit + stale) / (hit + stale + miss)');
    const window = new RatioWindow();
    expect(window.ratios(0, { api: { hit: 0, stale: 0, miss: 0 } }).overall).toBeNull();
    // A minute later: 8 more served from memory out of 10; the counts since start do not matter.
    const later = window.ratios(30_000, { api: { hit: 7, stale: 1, miss: 2 }, db: { hit: 0, stale: 0, miss: 0 } });
    expect(later).toEqual({ windowSeconds: 30, overall: 0.8, listeners: { api: 0.8, db: null } });
  });

  it('GET /cache uses hitRatio (cache-summary.ts) and the contracts state the one definition', () => {
    expect(read('src/admin/cache-summary.ts')).toContain('hitRatio(counts');
    expect(read('docs/contracts.md')).toContain('(hit + stale) / (hit + stale + miss)');
  });
});
