/**
 * Counters at 0 for every label value known from the configuration, before anything happens: a
 * series that appears only with its first event makes `increase()` and `rate()` miss that event,
 * so an alert on the first upstream error or the first failed reload would never fire.
 */
import { KNOWN_LABELS } from './definitions.js';
import type { Metrics } from './registry.js';

/** What the running configuration names. */
export interface KnownNames {
  http: readonly string[];
  postgres: readonly string[];
  buses: readonly string[];
}

export function primeMetrics(metrics: Metrics, names: KnownNames): void {
  for (const result of KNOWN_LABELS.reloadResults) metrics.reloads.inc({ result }, 0);
  for (const reason of KNOWN_LABELS.evictionReasons) metrics.evictions.inc({ reason }, 0);
  for (const source of ['admin', ...names.buses]) primeSource(metrics, source);
  for (const bus of names.buses) metrics.busGaps.inc({ bus }, 0);
  for (const [protocol, listeners] of [
    ['http', names.http],
    ['postgres', names.postgres],
  ] as const) {
    for (const listener of listeners) {
      for (const result of KNOWN_LABELS.results) metrics.requests.inc({ protocol, listener, result }, 0);
      for (const reason of KNOWN_LABELS.upstreamErrorReasons[protocol]) metrics.upstreamErrors.inc({ protocol, listener, reason }, 0);
      for (const cls of KNOWN_LABELS.responseClasses[protocol]) metrics.upstreamResponses.inc({ protocol, listener, class: cls }, 0);
      metrics.connectionsRefused.inc({ protocol, listener, reason: 'limit' }, 0);
      metrics.coalesced.inc({ protocol, listener }, 0);
    }
  }
  // Listeners invalidate what their writes reach; their messages are never malformed.
  for (const source of [...names.http.map((l) => `http:${l}`), ...names.postgres.map((l) => `postgres:${l}`)]) {
    metrics.invalidations.inc({ source }, 0);
    metrics.invalidatedEntries.inc({ source }, 0);
  }
  for (const listener of names.postgres) {
    metrics.loginTimeouts.inc({ listener }, 0);
    for (const reason of KNOWN_LABELS.catalogErrorReasons) metrics.catalogErrors.inc({ listener, reason }, 0);
  }
}

function primeSource(metrics: Metrics, source: string): void {
  metrics.invalidations.inc({ source }, 0);
  metrics.invalidatedEntries.inc({ source }, 0);
  metrics.invalidationErrors.inc({ source }, 0);
}
