/**
 * Every metric sidecache exports, in one table. The names are a contract (docs/contracts.md "Metrics"); labels may
 * grow. The README's metrics table lists each one (test/unit/docs.test.ts keeps them in step).
 */
const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export const METRICS = {
  requests: {
    type: 'counter',
    name: 'sidecache_requests_total',
    help: 'Requests answered, by protocol, listener, result (hit, miss, stale, bypass, error) and gateway route.',
    labelNames: ['protocol', 'listener', 'result', 'route'],
  },
  requestDuration: {
    type: 'histogram',
    name: 'sidecache_request_duration_seconds',
    help: 'Time from request to the end of the answer, by protocol, listener, result and gateway route.',
    labelNames: ['protocol', 'listener', 'result', 'route'],
    buckets: LATENCY_BUCKETS,
  },
  upstreamDuration: {
    type: 'histogram',
    name: 'sidecache_upstream_duration_seconds',
    help: 'Time spent waiting on the upstream, by protocol, listener and gateway route.',
    labelNames: ['protocol', 'listener', 'route'],
    buckets: LATENCY_BUCKETS,
  },
  entries: {
    type: 'gauge',
    name: 'sidecache_cache_entries',
    help: 'Entries held by the store.',
    labelNames: [],
  },
  bytes: {
    type: 'gauge',
    name: 'sidecache_cache_bytes',
    help: 'Bytes held by the store (keys, tags, metadata and bodies).',
    labelNames: [],
  },
  maxBytes: {
    type: 'gauge',
    name: 'sidecache_cache_max_bytes',
    help: 'The store ceiling, cache.maxBytes.',
    labelNames: [],
  },
  evictions: {
    type: 'counter',
    name: 'sidecache_evictions_total',
    help: 'Entries removed from the store, by reason (size, ttl, invalidation).',
    labelNames: ['reason'],
  },
  refused: {
    type: 'counter',
    name: 'sidecache_cache_refused_total',
    help: 'Entries not stored because they were larger than cache.maxEntryBytes.',
    labelNames: [],
  },
  invalidations: {
    type: 'counter',
    name: 'sidecache_invalidations_total',
    help: 'Invalidation messages applied, by source (admin or a bus name).',
    labelNames: ['source'],
  },
  invalidatedEntries: {
    type: 'counter',
    name: 'sidecache_invalidated_entries_total',
    help: 'Entries removed by invalidation messages, by source.',
    labelNames: ['source'],
  },
  invalidationErrors: {
    type: 'counter',
    name: 'sidecache_invalidation_errors_total',
    help: 'Invalidation messages refused as malformed, by source.',
    labelNames: ['source'],
  },
  busConnected: {
    type: 'gauge',
    name: 'sidecache_bus_connected',
    help: 'Whether an invalidation bus is subscribed (1) or not (0).',
    labelNames: ['bus'],
  },
  walSlotLag: {
    type: 'gauge',
    name: 'sidecache_wal_slot_lag_bytes',
    help: "WAL a postgres-wal bus's replication slot holds back: the server's WAL end less what sidecache confirmed applying.",
    labelNames: ['bus'],
  },
  busGaps: {
    type: 'counter',
    name: 'sidecache_bus_gaps_total',
    help: 'Reconnections of a bus after messages may have been lost (the cache is flushed unless onGap is keep).',
    labelNames: ['bus'],
  },
  busPublishes: {
    type: 'counter',
    name: 'sidecache_bus_publishes_total',
    help: "This instance's own invalidations published on a bus, by bus and result (sent; failed: kept in the bus outbox until the bus is back).",
    labelNames: ['bus', 'result'],
  },
  busOutbox: {
    type: 'gauge',
    name: 'sidecache_bus_outbox_names',
    help: 'Names (tags, keys, prefixes; 1 for all) waiting in a bus outbox to be published.',
    labelNames: ['bus'],
  },
  busEchoes: {
    type: 'counter',
    name: 'sidecache_bus_echoes_total',
    help: "Messages of this instance's own that came back on a bus (recognised by origin and skipped: they were applied when decided).",
    labelNames: ['bus'],
  },
  servingDegraded: {
    type: 'gauge',
    name: 'sidecache_serving_degraded',
    help: 'Whether the cache serves degraded because a bus is down (1) or not (0), by mode (bypass: nothing served from the cache; ttl: only young entries).',
    labelNames: ['mode'],
  },
  catalogErrors: {
    type: 'counter',
    name: 'sidecache_postgres_catalog_errors_total',
    help: 'Catalog questions a PostgreSQL listener could not ask, by listener and reason (authentication, permission, unreachable, timeout, version, other): statements of that database and user go upstream uncached.',
    labelNames: ['listener', 'reason'],
  },
  clientConnections: {
    type: 'gauge',
    name: 'sidecache_client_connections',
    help: 'Client connections open, by protocol and listener.',
    labelNames: ['protocol', 'listener'],
  },
  upstreamConnections: {
    type: 'gauge',
    name: 'sidecache_upstream_connections',
    help: 'Upstream connections open, by protocol and listener (PostgreSQL listeners: one per client session).',
    labelNames: ['protocol', 'listener'],
  },
  connectionsRefused: {
    type: 'counter',
    name: 'sidecache_connections_refused_total',
    help: 'Client connections closed at once on arrival, by protocol, listener and reason (limit: past maxConnections / maxClientConnections).',
    labelNames: ['protocol', 'listener', 'reason'],
  },
  loginTimeouts: {
    type: 'counter',
    name: 'sidecache_login_timeouts_total',
    help: 'PostgreSQL client connections closed for not finishing their startup and authentication within loginTimeout, by listener.',
    labelNames: ['listener'],
  },
  descriptorsExhausted: {
    type: 'counter',
    name: 'sidecache_descriptors_exhausted_total',
    help: 'Times the process was found with every file descriptor in use (new connections on every port are then accepted and closed at once), or a listener could not accept for want of one.',
    labelNames: [],
  },
  upstreamErrors: {
    type: 'counter',
    name: 'sidecache_upstream_errors_total',
    help: 'Upstream requests or connections that failed, by protocol, listener and reason (connect, timeout, reset, tls, queue-full).',
    labelNames: ['protocol', 'listener', 'reason'],
  },
  coalesced: {
    type: 'counter',
    name: 'sidecache_coalesced_total',
    help: 'Requests that joined a fill already in flight instead of going upstream.',
    labelNames: ['protocol', 'listener'],
  },
  upstreamResponses: {
    type: 'counter',
    name: 'sidecache_upstream_responses_total',
    help: 'Responses the upstream sent, by protocol, listener and class (HTTP: 1xx to 5xx; PostgreSQL: the SQLSTATE class, 00 for success).',
    labelNames: ['protocol', 'listener', 'class'],
  },
  buildInfo: {
    type: 'gauge',
    name: 'sidecache_build_info',
    help: 'Always 1; the labels say which sidecache version runs on which Node.js.',
    labelNames: ['version', 'node'],
  },
  reloads: {
    type: 'counter',
    name: 'sidecache_reload_total',
    help: 'Configuration reloads (SIGHUP, POST /reload), by result (applied: the file was valid and applied; rejected: it was invalid or unreadable, nothing changed).',
    labelNames: ['result'],
  },
  lastReload: {
    type: 'gauge',
    name: 'sidecache_last_reload_timestamp_seconds',
    help: 'Unix time of the last applied reload (0 before the first).',
    labelNames: [],
  },
} as const;

/**
 * The one hit ratio (docs/contracts.md "Hit ratio"): answers from memory (`hit` and `stale`) over
 * the answers that could have come from memory (`hit`, `stale` and `miss`); `bypass` and `error`
 * are out. `/cache`, the live page, the dashboard and the alerts all use it (test/unit/hit-ratio.test.ts).
 */
export const HIT_RATIO = {
  served: ['hit', 'stale'],
  answered: ['hit', 'stale', 'miss'],
} as const;

/** Label values known from the start: their counters are exported at 0, so `increase()` sees the first event. */
export const KNOWN_LABELS = {
  results: ['hit', 'miss', 'stale', 'bypass', 'error'],
  reloadResults: ['applied', 'rejected'],
  evictionReasons: ['size', 'ttl', 'invalidation'],
  upstreamErrorReasons: { http: ['connect', 'timeout', 'reset', 'queue-full'], postgres: ['connect', 'timeout', 'tls'] },
  responseClasses: { http: ['1xx', '2xx', '3xx', '4xx', '5xx'], postgres: ['00'] },
  catalogErrorReasons: ['authentication', 'permission', 'unreachable', 'timeout', 'version', 'other'],
} as const;

export type MetricKey = keyof typeof METRICS;
