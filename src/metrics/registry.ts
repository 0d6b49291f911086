import { readFileSync } from 'node:fs';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { Store } from '../cache/store.js';
import { BucketHistogram, flushCounts } from './fast-metrics.js';
import { type MetricKey, METRICS } from './definitions.js';

type Def = (typeof METRICS)[keyof typeof METRICS];
type MetricOf<D extends Def> = D['type'] extends 'counter' ? Counter<string> : D['type'] extends 'gauge' ? Gauge<string> : BucketHistogram;
export type Metrics = { readonly [K in keyof typeof METRICS]: MetricOf<(typeof METRICS)[K]> };

/**
 * A fresh registry per server instance (never prom-client's global one), holding every metric of
 * `definitions.ts` plus the `process_*` and `nodejs_*` defaults. Store gauges read the store
 * when scraped, so nothing is counted twice.
 */
/** A labelled gauge's values, read when scraped. */
export type LabelledReader = () => Iterable<{ labels: Record<string, string>; value: number }>;

export function createMetrics(store: Store, labelled: Partial<Record<MetricKey, LabelledReader>> = {}): { registry: Registry; metrics: Metrics } {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const readers: Partial<Record<MetricKey, () => number>> = {
    entries: () => store.size,
    bytes: () => store.bytes,
    maxBytes: () => store.maxBytes,
  };
  const made: Record<string, Counter<string> | Gauge<string> | BucketHistogram> = {};
  for (const [key, def] of Object.entries(METRICS) as [MetricKey, Def][]) {
    const options = { name: def.name, help: def.help, labelNames: [...def.labelNames], registers: [registry] };
    const read = readers[key];
    const readLabelled = labelled[key];
    // Counters take increments counted beside them (`counter-tally.ts`) when scraped.
    if (def.type === 'counter')
      made[key] = new Counter({
        ...options,
        collect() {
          flushCounts(this);
        },
      });
    else if (def.type === 'histogram') made[key] = new BucketHistogram({ ...options, buckets: def.buckets });
    else if (readLabelled !== undefined)
      made[key] = new Gauge({
        ...options,
        collect() {
          this.reset();
          for (const { labels, value } of readLabelled()) this.set(labels, value);
        },
      });
    else if (read === undefined) made[key] = new Gauge(options);
    else
      made[key] = new Gauge({
        ...options,
        collect() {
          this.set(read());
        },
      });
  }
  const metrics = made as unknown as Metrics;
  metrics.buildInfo.set({ version: VERSION, node: process.version }, 1);
  return { registry, metrics };
}

/** The version of the package this code came from (`sidecache_build_info`). */
const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
