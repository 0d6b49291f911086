import type { Store } from '../cache/store.js';
import type { Clock } from '../clock.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/registry.js';
import { countByLabel } from '../metrics/fast-metrics.js';
import { HttpListener, type HttpListenerDeps } from '../upstreams/http/listener.js';
import { PostgresListener } from '../upstreams/postgres/listener.js';

/** What tests may tune in the listeners; none of it is a configuration key. */
export interface ListenerOptions {
  /**
   * How long a Postgres statement's first use waits for its cache plan (default 100 ms). Tests that
   * need a plan on a loaded machine raise it; not a configuration key.
   */
  planWaitMs?: number;
  /** How long an unused catalog connection stays open (default 10 s); for tests, not a configuration key. */
  catalogIdleMs?: number;
  /** How long an in-band catalog question waits for an idle session (tests); default 5 s. */
  catalogWaitMs?: number;
  /** Where access lines go (`log.access`); default stdout. For tests. */
  accessSink?: (text: string) => void;
}

export interface ListenersDeps {
  store: Store;
  clock: Clock;
  log: Logger;
  metrics: Metrics;
  /** The local-invalidation hook (fan-out): applied here, published on every bus. */
  invalidate: HttpListenerDeps['invalidate'];
  /** With `workers`, this worker's number: access lines carry it as `worker`. */
  worker?: number;
  /** A server could not accept; `where` names it (`http api`). */
  acceptError: (where: string, err: NodeJS.ErrnoException) => void;
}

/** The listeners of `http[]` and `postgres[]`, each with its metrics hooks and child logger. */
export function makeListeners(
  config: Config,
  options: ListenerOptions,
  deps: ListenersDeps,
): { http: readonly HttpListener[]; postgres: readonly PostgresListener[] } {
  const { store, clock, metrics, invalidate } = deps;
  const accessSink = options.accessSink ?? ((text: string) => process.stdout.write(text));
  const worker = deps.worker === undefined ? {} : { worker: deps.worker };
  const accessLog: HttpListenerDeps['accessLog'] = config.log.access
    ? (line) => accessSink(JSON.stringify({ time: new Date().toISOString(), msg: 'access', ...worker, ...line }) + '\n')
    : undefined;
  const http = config.http.map(
    (listener) =>
      new HttpListener({
        config: listener,
        store,
        clock,
        log: deps.log.child({ listener: listener.name }),
        adminToken: config.admin.token,
        invalidate,
        onUpstreamError: (reason) => metrics.upstreamErrors.inc({ protocol: 'http', listener: listener.name, reason }),
        onRefused: (reason) => metrics.connectionsRefused.inc({ protocol: 'http', listener: listener.name, reason }),
        onAcceptError: (err) => deps.acceptError(`http ${listener.name}`, err),
        onUpstreamResponse: countByLabel(metrics.upstreamResponses, { protocol: 'http', listener: listener.name }, 'class'),
        ...(accessLog !== undefined && { accessLog }),
      }),
  );
  const postgres = config.postgres.map(
    (listener) =>
      new PostgresListener({
        config: listener,
        store,
        clock,
        log: deps.log.child({ listener: listener.name }),
        invalidate,
        onCatalogError: (reason) => metrics.catalogErrors.inc({ listener: listener.name, reason }),
        onUpstreamError: (reason) => metrics.upstreamErrors.inc({ protocol: 'postgres', listener: listener.name, reason }),
        onRefused: (reason) => metrics.connectionsRefused.inc({ protocol: 'postgres', listener: listener.name, reason }),
        onLoginTimeout: () => metrics.loginTimeouts.inc({ listener: listener.name }),
        onAcceptError: (err) => deps.acceptError(`postgres ${listener.name}`, err),
        onUpstreamResponse: countByLabel(metrics.upstreamResponses, { protocol: 'postgres', listener: listener.name }, 'class'),
        ...(accessLog !== undefined && { accessLog }),
        ...(options.planWaitMs !== undefined && { planWaitMs: options.planWaitMs }),
        ...(options.catalogIdleMs !== undefined && { catalogIdleMs: options.catalogIdleMs }),
        ...(options.catalogWaitMs !== undefined && { catalogWaitMs: options.catalogWaitMs }),
      }),
  );
  return { http, postgres };
}

/** Connections open per listener, both protocols (the `sidecache_client_connections` and `sidecache_upstream_connections` gauges). */
export function connectionsOf(
  http: readonly HttpListener[],
  postgres: readonly PostgresListener[],
  count: (l: HttpListener | PostgresListener) => number,
): { labels: Record<string, string>; value: number }[] {
  return [
    ...http.map((l) => ({ labels: { protocol: 'http', listener: l.name }, value: count(l) })),
    ...postgres.map((l) => ({ labels: { protocol: 'postgres', listener: l.name }, value: count(l) })),
  ];
}
