import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { BucketHistogram, countByLabel, countLater, flushCounts } from '../../../src/metrics/fast-metrics.js';

// Issue 14: request metrics are fed without prom-client's per-call label hashing. What a scrape
// reads must not change: the same text and the same values as prom-client's own metrics.
describe('BucketHistogram', () => {
  const options = { name: 'x_seconds', help: 'h', labelNames: ['protocol', 'listener', 'result', 'route'], buckets: [0.001, 0.01, 0.1, 1] };
  const sets: Record<string, string>[] = [
    { protocol: 'http', listener: 'a', result: 'hit' },
    { protocol: 'http', listener: 'a', result: 'miss', route: 'r' },
    { protocol: 'postgres', listener: 'p', result: 'hit' },
  ];
  const values = [0.0005, 0.001, 0.005, 0.5, 3, 0.01, 1, 0, 2.5, 0.1];

  it('scrapes as prom-client Histogram does: the same text and the same get() values', async () => {
    const expected = new Registry();
    const actual = new Registry();
    const reference = new Histogram({ ...options, registers: [expected] });
    const fast = new BucketHistogram({ ...options, registers: [actual] });
    values.forEach((v, i) => {
      reference.labels(sets[i % 3]!).observe(v);
      fast.labels(sets[i % 3]!).observe(v);
    });
    expect(await actual.metrics()).toBe(await expected.metrics());
    expect((await fast.get()).values).toEqual((await reference.get()).values);
    expect(await actual.getMetricsAsJSON()).toEqual(await expected.getMetricsAsJSON());
  });

  it('keeps one child per label set, refuses unknown labels and non-numbers, and resets', async () => {
    const fast = new BucketHistogram({ ...options, registers: [] });
    expect(fast.labels(sets[0]!)).toBe(fast.labels({ ...sets[0]! }));
    expect(() => fast.labels({ nope: 'x' })).toThrow(/nope/);
    expect(() => fast.labels(sets[0]!).observe(Number.NaN)).toThrow(TypeError);
    fast.observe(sets[0]!, 0.2);
    expect((await fast.get()).values.find((v) => v.metricName === 'x_seconds_count')?.value).toBe(1);
    fast.reset();
    expect((await fast.get()).values).toEqual([]);
  });
});

describe('counter tallies', () => {
  it('reach the counter when it is scraped, as if each increment had been made there', async () => {
    const expected = new Registry();
    const actual = new Registry();
    const labelNames = ['protocol', 'result'];
    const reference = new Counter({ name: 'r_total', help: 'h', labelNames, registers: [expected] });
    const counter: Counter<string> = new Counter({
      name: 'r_total',
      help: 'h',
      labelNames,
      registers: [actual],
      collect() {
        flushCounts(this);
      },
    });
    const hit = countLater(counter, { protocol: 'http', result: 'hit' });
    const miss = countLater(counter, { protocol: 'http', result: 'miss' });
    for (let i = 0; i < 5; i++) {
      hit.inc();
      reference.inc({ protocol: 'http', result: 'hit' });
    }
    miss.inc();
    reference.inc({ protocol: 'http', result: 'miss' });
    expect(await actual.metrics()).toBe(await expected.metrics());
    hit.inc();
    reference.inc({ protocol: 'http', result: 'hit' });
    expect(await actual.metrics()).toBe(await expected.metrics());
  });

  it('count by one label whose values come as they come, as labelled increments would', async () => {
    const expected = new Registry();
    const actual = new Registry();
    const labelNames = ['listener', 'class'];
    const reference = new Counter({ name: 'u_total', help: 'h', labelNames, registers: [expected] });
    const counter: Counter<string> = new Counter({
      name: 'u_total',
      help: 'h',
      labelNames,
      registers: [actual],
      collect() {
        flushCounts(this);
      },
    });
    const count = countByLabel(counter, { listener: 'api' }, 'class');
    for (const cls of ['2xx', '2xx', '5xx', '3xx', '2xx']) {
      count(cls);
      reference.inc({ listener: 'api', class: cls });
    }
    expect(await actual.metrics()).toBe(await expected.metrics());
  });
});
