/**
 * The metrics fed on every request, built for that: a labelled child is found once and kept, and
 * counting or observing is an increment, with no label hashing, validation or allocation per
 * call (prom-client does them on each `inc`/`observe`, children included: about a microsecond a
 * request, issue 14). What a scrape reads is unchanged.
 *
 * - `BucketHistogram` implements the metric interface prom-client's `Registry` reads when scraped,
 *   with the same values in the same shape as prom-client's own histogram (buckets cumulative,
 *   then `+Inf`, `_sum`, `_count`, per label set).
 * - `countLater` keeps counts per label set beside a prom-client Counter, added to it when it is
 *   scraped (its `collect` hook calls `flushCounts`).
 */
import type { Counter, Registry } from 'prom-client';

type Labels = Record<string, string>;

/** One value of the scrape, as prom-client's histogram gives it. */
interface Value {
  labels: Record<string, string | number>;
  sharedLabels?: Labels;
  value: number;
  metricName: string;
  /** Always null: no exemplars (as prom-client's histogram without `enableExemplars`). */
  exemplar?: null;
}

/** A label set's observations. */
export interface HistogramChild {
  observe(value: number): void;
}

class Child implements HistogramChild {
  readonly labels: Labels;
  /** Observations per bucket (not cumulative); the last slot is above every bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  readonly #bounds: readonly number[];

  constructor(labels: Labels, bounds: readonly number[]) {
    this.labels = labels;
    this.#bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    // A non-number is a caller's bug; prom-client throws on it too.
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]! += 1;
    this.sum += value;
    this.count += 1;
  }
}

export interface BucketHistogramOptions {
  name: string;
  help: string;
  labelNames: readonly string[];
  buckets: readonly number[];
  registers: Registry[];
}

export class BucketHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly labelNames: readonly string[];
  readonly #bounds: number[];
  readonly #children = new Map<string, Child>();

  constructor(options: BucketHistogramOptions) {
    this.name = options.name;
    this.help = options.help;
    this.labelNames = options.labelNames;
    this.#bounds = [...options.buckets].sort((a, b) => a - b);
    for (const registry of options.registers) registry.registerMetric(this as never);
  }

  /** The child of one label set; callers keep it, so that observing costs no lookup. */
  labels(labels: Labels): HistogramChild {
    for (const name of Object.keys(labels)) {
      if (!this.labelNames.includes(name)) throw new Error(`Added label "${name}" is not included in initial labelset: ${this.labelNames.join(', ')}`);
    }
    const id = this.labelNames.map((name) => labels[name] ?? '\u0001').join('\u0000');
    let child = this.#children.get(id);
    if (child === undefined) {
      child = new Child({ ...labels }, this.#bounds);
      this.#children.set(id, child);
    }
    return child;
  }

  observe(labels: Labels, value: number): void {
    this.labels(labels).observe(value);
  }

  reset(): void {
    this.#children.clear();
  }

  /** What prom-client's Registry formats: label sets apart from `le`, as its histogram gives them. */
  getForPromString(): Promise<{ name: string; help: string; type: 'histogram'; values: Value[]; aggregator: 'sum' }> {
    const values: Value[] = [];
    const bucket = `${this.name}_bucket`;
    for (const child of this.#children.values()) {
      let acc = 0;
      for (let i = 0; i < this.#bounds.length; i++) {
        acc += child.counts[i]!;
        values.push({ labels: { le: this.#bounds[i]! }, sharedLabels: child.labels, value: acc, metricName: bucket, exemplar: null });
      }
      values.push({ labels: { le: '+Inf' }, sharedLabels: child.labels, value: child.count, metricName: bucket, exemplar: null });
      values.push({ labels: {}, sharedLabels: child.labels, value: child.sum, metricName: `${this.name}_sum` });
      values.push({ labels: {}, sharedLabels: child.labels, value: child.count, metricName: `${this.name}_count` });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator });
  }

  /** The values with each label set merged into its labels, as prom-client's `get()`. */
  async get(): Promise<{ name: string; help: string; type: 'histogram'; values: Value[]; aggregator: 'sum' }> {
    const data = await this.getForPromString();
    data.values = data.values.map(({ sharedLabels, ...value }) => ({ ...value, labels: { ...sharedLabels, ...value.labels } }));
    return data;
  }
}

/** A label set's count, added to the counter at the next scrape. */
export interface CountChild {
  inc(): void;
}

class Tally implements CountChild {
  readonly labels: Labels;
  pending = 0;

  constructor(labels: Labels) {
    this.labels = labels;
  }

  inc(): void {
    this.pending += 1;
  }
}

const talliesOf = new WeakMap<Counter<string>, Tally[]>();

/** A child of `counter` for `labels` whose counts reach the counter when `flushCounts` runs. */
export function countLater(counter: Counter<string>, labels: Labels): CountChild {
  const tally = new Tally({ ...labels });
  let tallies = talliesOf.get(counter);
  if (tallies === undefined) talliesOf.set(counter, (tallies = []));
  tallies.push(tally);
  return tally;
}

/** Adds what was counted since the last flush (the counter's `collect` hook calls it). */
export function flushCounts(counter: Counter<string>): void {
  for (const tally of talliesOf.get(counter) ?? []) {
    if (tally.pending === 0) continue;
    counter.inc(tally.labels, tally.pending);
    tally.pending = 0;
  }
}

/**
 * Counts by one label whose values are few and known only as they come (an upstream's status
 * class): `labels` plus `name` = the value, one `countLater` child per value, found by the value.
 */
export function countByLabel(counter: Counter<string>, labels: Labels, name: string): (value: string) => void {
  const children = new Map<string, CountChild>();
  return (value) => {
    let child = children.get(value);
    if (child === undefined) children.set(value, (child = countLater(counter, { ...labels, [name]: value })));
    child.inc();
  };
}
