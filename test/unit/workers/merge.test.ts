/** Issue 14 point 4: what the admin of `workers: N` makes of the workers' answers. */
import { describe, expect, it } from 'vitest';
import { Store } from '../../../src/cache/store.js';
import { realClock } from '../../../src/clock.js';
import { createMetrics } from '../../../src/metrics/registry.js';
import { mergeEntries, mergeMetrics, mergeSummaries } from '../../../src/workers/merge.js';
import { sample } from '../../helpers/sidecache.js';

function registryOf(maxBytes: number) {
  return createMetrics(new Store({ maxBytes, maxEntryBytes: 1024, clock: realClock }));
}

describe('mergeMetrics', () => {
  it('sums counters, histograms and the stores, and takes the primary own gauges once', async () => {
    const primary = registryOf(300);
    primary.metrics.busConnected.set({ bus: 'redis:x' }, 1);
    primary.metrics.reloads.inc({ result: 'applied' });
    const workers = [registryOf(100), registryOf(100), registryOf(100)];
    for (const [i, w] of workers.entries()) {
      w.metrics.requests.inc({ protocol: 'http', listener: 'api', result: 'hit' }, i + 1);
      w.metrics.requestDuration.observe({ protocol: 'http', listener: 'api', result: 'hit' }, 0.001);
      // A worker applies a reload too: the primary alone counts it.
      w.metrics.reloads.inc({ result: 'applied' });
    }
    const text = await mergeMetrics(await primary.registry.getMetricsAsJSON(), await Promise.all(workers.map((w) => w.registry.getMetricsAsJSON()))).metrics();
    expect(sample(text, 'sidecache_requests_total', { protocol: 'http', listener: 'api', result: 'hit' })).toBe(6);
    expect(sample(text, 'sidecache_request_duration_seconds_count', { protocol: 'http', listener: 'api', result: 'hit' })).toBe(3);
    expect(sample(text, 'sidecache_cache_max_bytes')).toBe(300);
    expect(sample(text, 'sidecache_bus_connected', { bus: 'redis:x' })).toBe(1);
    expect(sample(text, 'sidecache_reload_total', { result: 'applied' })).toBe(1);
    expect(text).toMatch(/^sidecache_build_info\{[^}]*\} 1$/m);
  });
});

describe('mergeSummaries and mergeEntries', () => {
  it('adds up counts and recomputes hit ratios; maxBytes is the configured total', () => {
    const one = {
      entries: 2,
      bytes: 20,
      maxBytes: 50,
      listeners: { api: { protocol: 'http', hit: 3, miss: 1, stale: 0, bypass: 0, error: 0, hitRatio: 0.75 } },
    };
    const two = { entries: 1, bytes: 10, maxBytes: 50, listeners: { api: { protocol: 'http', hit: 0, miss: 4, stale: 0, bypass: 1, error: 0, hitRatio: 0 } } };
    const merged = mergeSummaries(100, [
      { worker: 1, value: one },
      { worker: 2, value: two },
    ]);
    expect(merged).toMatchObject({ entries: 3, bytes: 30, maxBytes: 100, listeners: { api: { hit: 3, miss: 5, bypass: 1, hitRatio: 3 / 8 } } });
    expect(merged.workers).toEqual([
      { worker: 1, entries: 2, bytes: 20, maxBytes: 50 },
      { worker: 2, entries: 1, bytes: 10, maxBytes: 50 },
    ]);
  });

  it('labels each row with its worker and keeps the first `limit` of them all by the sort', () => {
    const row = (hits: number) => ({ key: { protocol: 'http', listener: 'api', url: `/${hits}` }, tags: [], bytes: 1, ageSeconds: 0, ttlSeconds: 1, hits });
    const merged = mergeEntries({ sort: 'hits', limit: 3, reveal: false }, [
      { worker: 1, value: { total: 5, matched: 2, scanned: 5, entries: [row(9), row(1)] } },
      { worker: 2, value: { total: 4, matched: 2, scanned: 4, entries: [row(5), row(4)] } },
    ]);
    expect(merged.total).toBe(9);
    expect(merged.matched).toBe(4);
    expect(merged.entries.map((e) => [e.worker, e.hits])).toEqual([
      [1, 9],
      [2, 5],
      [2, 4],
    ]);
  });
});
