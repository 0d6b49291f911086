import type { Store } from '../cache/store.js';
import type { RequestResult } from '../events.js';
import { hitRatio } from '../metrics/hit-ratio.js';
import type { Metrics } from '../metrics/registry.js';

/** Requests answered, by result, and the hit ratio they make. */
export interface Counts {
  hit: number;
  miss: number;
  stale: number;
  bypass: number;
  error: number;
  /** Since start: answers from memory (hit and stale) over answers that could have been (hit, stale, miss): `HIT_RATIO`. */
  hitRatio: number | null;
}

export interface ListenerSummary extends Counts {
  protocol: string;
  /** A gateway listener's counts per route (`http[].routes[].name`). */
  routes?: Record<string, Counts>;
  /** PostgreSQL listeners: catalog questions that could not be asked, by reason (nothing of that database and user is cached meanwhile). */
  catalogErrors?: Record<string, number>;
}

export interface CacheSummary {
  entries: number;
  bytes: number;
  maxBytes: number;
  listeners: Record<string, ListenerSummary>;
}

const RESULTS = new Set<string>(['hit', 'miss', 'stale', 'bypass', 'error'] satisfies RequestResult[]);

function isResult(value: string): value is RequestResult {
  return RESULTS.has(value);
}

/** The `GET /cache` document, read from the store and the request counter. */
export async function summarizeCache(store: Store, metrics: Metrics): Promise<CacheSummary> {
  const listeners: Record<string, ListenerSummary> = {};
  for (const { labels, value } of (await metrics.requests.get()).values) {
    const name = String(labels.listener);
    const summary = (listeners[name] ??= { protocol: String(labels.protocol), hit: 0, miss: 0, stale: 0, bypass: 0, error: 0, hitRatio: null });
    const result = String(labels.result);
    if (!isResult(result)) continue;
    summary[result] += value;
    if (labels.route !== undefined) ((summary.routes ??= {})[String(labels.route)] ??= emptyCounts())[result] += value;
  }
  for (const { labels, value } of (await metrics.catalogErrors.get()).values) {
    // Every reason is exported at 0 from the start (metrics/prime.ts); only failures are shown.
    if (value === 0) continue;
    const name = String(labels.listener);
    const summary = (listeners[name] ??= { protocol: 'postgres', hit: 0, miss: 0, stale: 0, bypass: 0, error: 0, hitRatio: null });
    (summary.catalogErrors ??= {})[String(labels.reason)] = value;
  }
  for (const summary of Object.values(listeners))
    for (const counts of [summary, ...Object.values(summary.routes ?? {})]) counts.hitRatio = hitRatio(counts as unknown as Record<string, number>);
  return { entries: store.size, bytes: store.bytes, maxBytes: store.maxBytes, listeners };
}

function emptyCounts(): Counts {
  return { hit: 0, miss: 0, stale: 0, bypass: 0, error: 0, hitRatio: null };
}
