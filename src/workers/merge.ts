/**
 * What the admin of `workers: N` answers, put together from the primary and every worker
 * (docs/contracts.md "Workers" says how each metric aggregates).
 */
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue, type Registry } from 'prom-client';
import type { CacheSummary, Counts, ListenerSummary } from '../admin/cache-summary.js';
import type { EntryQuery, EntryRow } from '../admin/entries.js';
import { METRICS } from '../metrics/definitions.js';
import { hitRatio } from '../metrics/hit-ratio.js';

type MetricJson = MetricObjectWithValues<MetricValue<string>>;

/**
 * Gauges only the primary knows (it holds the buses, the reload, the configured total): the
 * workers' values of these are left out. `sidecache_cache_max_bytes` is the configured total, not
 * the sum of the workers' shares; `sidecache_build_info` is 1.
 */
export const PRIMARY_GAUGES: ReadonlySet<string> = new Set([
  METRICS.maxBytes.name,
  METRICS.busConnected.name,
  METRICS.walSlotLag.name,
  METRICS.busOutbox.name,
  METRICS.servingDegraded.name,
  METRICS.buildInfo.name,
  METRICS.lastReload.name,
]);

/** Counters only the primary counts (a reload is validated there, then applied by every worker). */
const PRIMARY_COUNTERS: ReadonlySet<string> = new Set([METRICS.reloads.name]);

/** Gauges of what workers hold (their stores, their connections): the primary's own are left out. */
const WORKER_GAUGES: ReadonlySet<string> = new Set([
  METRICS.entries.name,
  METRICS.bytes.name,
  METRICS.clientConnections.name,
  METRICS.upstreamConnections.name,
]);

/**
 * One registry of the primary's metrics and every worker's: counters and histograms summed (the
 * primary's are its buses' and the admin's; the workers' their listeners' and stores'), gauges as
 * `PRIMARY_GAUGES` / `WORKER_GAUGES` say (the workers' summed), `process_*` and `nodejs_*` by
 * prom-client's own aggregators (mostly summed over every process).
 */
export function mergeMetrics(primary: MetricJson[], workers: MetricJson[][]): Registry {
  const own = primary.filter((m) => !WORKER_GAUGES.has(m.name));
  const theirs = workers.map((list) => list.filter((m) => !PRIMARY_GAUGES.has(m.name) && !PRIMARY_COUNTERS.has(m.name)));
  // The store's histograms state their aggregator; anything that does not is summed.
  const all = [own, ...theirs].map((list) => list.map((m) => ({ ...m, aggregator: m.aggregator ?? 'sum' })));
  return AggregatorRegistry.aggregate(all);
}

/** `GET /cache` over every worker: counts summed, hit ratios recomputed, `maxBytes` the configured total, and each worker's store. */
export function mergeSummaries(maxBytes: number, answers: { worker: number; value: unknown }[]): CacheSummary & { workers: object[] } {
  const listeners: Record<string, ListenerSummary> = {};
  let entries = 0;
  let bytes = 0;
  const workers: object[] = [];
  for (const { worker, value } of answers) {
    const summary = value as CacheSummary;
    entries += summary.entries;
    bytes += summary.bytes;
    workers.push({ worker, entries: summary.entries, bytes: summary.bytes, maxBytes: summary.maxBytes });
    for (const [name, theirs] of Object.entries(summary.listeners)) {
      const mine = (listeners[name] ??= { protocol: theirs.protocol, ...emptyCounts() });
      addCounts(mine, theirs);
      for (const [route, counts] of Object.entries(theirs.routes ?? {})) addCounts(((mine.routes ??= {})[route] ??= emptyCounts()), counts);
      for (const [reason, n] of Object.entries(theirs.catalogErrors ?? {})) (mine.catalogErrors ??= {})[reason] = (mine.catalogErrors?.[reason] ?? 0) + n;
    }
  }
  for (const summary of Object.values(listeners))
    for (const counts of [summary, ...Object.values(summary.routes ?? {})]) counts.hitRatio = hitRatio(counts as unknown as Record<string, number>);
  return { entries, bytes, maxBytes, listeners, workers };
}

/** `GET /cache/entries` over every worker: each row labelled with its `worker`, the first `limit` of them all by `sort`. */
export function mergeEntries(
  query: EntryQuery,
  answers: { worker: number; value: unknown }[],
): { total: number; scanned: number; matched: number; entries: (EntryRow & { worker: number })[] } {
  type Listed = { total: number; matched: number; scanned: number; entries: EntryRow[] };
  let total = 0;
  let matched = 0;
  let scanned = 0;
  const rows: (EntryRow & { worker: number })[] = [];
  for (const { worker, value } of answers) {
    const listed = value as Listed;
    total += listed.total;
    matched += listed.matched;
    scanned += listed.scanned;
    for (const row of listed.entries) rows.push({ worker, ...row });
  }
  const score = (row: EntryRow): number => (query.sort === 'bytes' ? row.bytes : query.sort === 'age' ? row.ageSeconds : row.hits);
  rows.sort((a, b) => score(b) - score(a));
  return { total, scanned, matched, entries: rows.slice(0, query.limit) };
}

function emptyCounts(): Counts {
  return { hit: 0, miss: 0, stale: 0, bypass: 0, error: 0, hitRatio: null };
}

function addCounts(into: Counts, from: Counts): void {
  for (const key of ['hit', 'miss', 'stale', 'bypass', 'error'] as const) into[key] += from[key];
}
