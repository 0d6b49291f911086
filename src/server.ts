import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import { hostname } from 'node:os';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { Readiness } from './admin/readiness.js';
import { RecentInvalidations } from './admin/live.js';
import { type CacheSummary, summarizeCache } from './admin/cache-summary.js';
import { type EntryQuery, listEntries } from './admin/entries.js';
import { createAdminServer } from './admin/server.js';
import { Store } from './cache/store.js';
import type { InvalidationTarget } from './cache/types.js';
import { type Clock, realClock } from './clock.js';
import type { Config } from './config/schema.js';
import { Dispatcher } from './invalidation/dispatch.js';
import { FanOut, type Peers } from './invalidation/fanout.js';
import { servingMode } from './invalidation/while-down.js';
import type { BusRunner } from './invalidation/runner.js';
import { closeGracefully, DescriptorWatch, httpUrlOf, settleWithin } from './listen.js';
import { Logger } from './log.js';
import { createMetrics, type Metrics } from './metrics/registry.js';
import { subscribeMetrics } from './metrics/subscribe.js';
import { primeMetrics } from './metrics/prime.js';
import { describeHttpKey } from './upstreams/http/describe-key.js';
import { describePgKey } from './upstreams/postgres/describe-key.js';
import { planReload, readForReload } from './reload.js';
import { HTTP_RESTART_KEYS, HttpListener } from './upstreams/http/listener.js';
import { POSTGRES_RESTART_KEYS, type PostgresListener } from './upstreams/postgres/listener.js';
import { listenAdmin } from './server/admin-listen.js';
import { ServerBuses } from './server/buses.js';
import { connectionsOf, type ListenerOptions, makeListeners } from './server/listeners.js';

/** How long a client waits for its write's invalidation to be published before it is answered anyway (the outbox keeps it). */
const PUBLISH_WAIT_MS = 2_000;

/** How often entries past their stale window are swept out of memory. */
const SWEEP_INTERVAL_MS = 5000;

/** How often the process checks whether it has run out of file descriptors (`DescriptorWatch`). */
const DESCRIPTOR_CHECK_MS = 1000;

/** An accept error a server reports is logged at most this often (it may come once per connection). */
const ACCEPT_WARN_INTERVAL_MS = 10_000;

/** A store key read back by its protocol (`GET /cache/entries`). */
const describeKey = (key: string, reveal: boolean) => describeHttpKey(key, reveal) ?? describePgKey(key, reveal);

export interface ServerOptions extends ListenerOptions {
  clock?: Clock;
  log?: Logger;
  /** See `StoreOptions.unsafeWithoutFillGuard`: for the race test only, never from configuration. */
  unsafeWithoutFillGuard?: boolean;
  /** The file the configuration came from: SIGHUP and `POST /reload` read it again. */
  configFile?: string;
  /** How long a client waits for a publish (default 2 s); for tests, not a configuration key. */
  publishWaitMs?: number;
  /**
   * Set in a worker of `workers: N` (docs/workers.md): the primary holds the admin and the buses, so
   * this server has neither; its local invalidations reach the other workers through `peers`.
   */
  worker?: { index: number; peers: Peers };
}

/** What a reload did. */
export interface ReloadResult {
  /** Listener names and sections whose new settings now run. */
  applied: string[];
  /** Key paths that changed but need a restart; their old values keep running. */
  needsRestart: string[];
}

export interface StopResult {
  /** True when work was still in flight at the deadline and its connections were closed. */
  forced: boolean;
}

/**
 * Everything one configuration describes, built once from a frozen config. `start()` binds in
 * order (admin first, so probes answer while the rest comes up); `stop()` goes in reverse.
 */
export class SidecacheServer {
  #config: Config;
  readonly store: Store;
  readonly registry: Registry;
  readonly metrics: Metrics;
  readonly dispatcher: Dispatcher;
  /** Local invalidations: applied here, published on every bus. */
  readonly fanOut: FanOut;
  /** Sent as `origin` in what this instance publishes, so that it knows its own echoes (within the contract's 200 characters). */
  readonly instanceId = `${hostname().slice(0, 100)}/${randomUUID()}`;
  readonly readiness = new Readiness();
  readonly #log: Logger;
  readonly #admin: http.Server | undefined;
  readonly httpListeners: readonly HttpListener[];
  readonly postgresListeners: readonly PostgresListener[];
  readonly #buses: ServerBuses;
  readonly #configFile: string | undefined;
  readonly #unsubscribe: () => void;
  readonly #recent: RecentInvalidations;
  #adminAddress: AddressInfo | undefined;
  readonly #descriptors: DescriptorWatch;
  #acceptWarnedAt = -Infinity;
  readonly #worker: boolean;
  readonly #clock: Clock;

  constructor(config: Config, options: ServerOptions = {}) {
    this.#config = config;
    this.#configFile = options.configFile;
    this.#log = options.log ?? new Logger();
    const clock = (this.#clock = options.clock ?? realClock);
    this.store = new Store({ ...config.cache, clock, unsafeWithoutFillGuard: options.unsafeWithoutFillGuard === true });
    // Read when scraped: listeners are built below.
    ({ registry: this.registry, metrics: this.metrics } = createMetrics(this.store, {
      clientConnections: () => this.#connections((l) => l.clientConnections),
      upstreamConnections: () => this.#connections((l) => l.upstreamConnections),
    }));
    this.#unsubscribe = subscribeMetrics(this.store, this.metrics);
    this.#recent = new RecentInvalidations(this.store);
    this.dispatcher = new Dispatcher(this.store, this.#log.child({ component: 'invalidation' }));
    this.fanOut = new FanOut(this.dispatcher, () => this.buses, options.publishWaitMs ?? PUBLISH_WAIT_MS, options.worker?.peers);
    const invalidate = (target: InvalidationTarget, source: string) => this.fanOut.invalidate(target, source);
    this.#worker = options.worker !== undefined;
    this.#admin = this.#worker
      ? undefined
      : createAdminServer({
          config: config.admin,
          store: this.store,
          registry: this.registry,
          metrics: this.metrics,
          invalidate,
          readiness: this.readiness,
          recent: this.#recent,
          log: this.#log.child({ component: 'admin' }),
          reload: () => this.reloadFromFile(),
          explain: (name, sql, database, user) => this.postgresListeners.find((l) => l.name === name)?.explain(sql, database, user),
          explainHttp: (name, url, method, headers, reveal) => this.httpListeners.find((l) => l.name === name)?.explain(url, method, headers, reveal),
          summary: () => this.summary(),
          entries: (query) => this.entries(query),
          buses: () => this.buses.map((b) => ({ name: b.name, connected: b.reason === undefined, reason: b.reason ?? null })),
        });
    ({ http: this.httpListeners, postgres: this.postgresListeners } = makeListeners(config, options, {
      store: this.store,
      clock,
      log: this.#log,
      metrics: this.metrics,
      invalidate,
      acceptError: (where, err) => this.#acceptError(where, err),
      ...(options.worker !== undefined && { worker: options.worker.index }),
    }));
    this.readiness.configure(
      () => this.config.readyz.requireBuses,
      () => servingMode(this.store.degradation),
    );
    // A worker's buses run in the primary, which relays their messages and degradation.
    this.#buses = new ServerBuses(this.#worker ? { ...config, invalidation: [] } : config, {
      store: this.store,
      metrics: this.metrics,
      readiness: this.readiness,
      log: this.#log.child({ component: 'invalidation' }),
      origin: this.instanceId,
      expandTables: (tables, invalidate) => {
        for (const listener of this.postgresListeners) listener.expandTables(tables, invalidate);
      },
    });
    this.#primeMetrics();
    for (const listener of [...this.httpListeners, ...this.postgresListeners]) {
      const kind = listener instanceof HttpListener ? 'http' : 'postgres';
      this.readiness.add(`${kind} ${listener.name}`, () => (listener.listening ? undefined : 'not listening'));
    }
    this.#descriptors = new DescriptorWatch(DESCRIPTOR_CHECK_MS, (exhausted, limit) => {
      if (!exhausted) return this.#log.info('file descriptors available again', { limit });
      this.metrics.descriptorsExhausted.inc();
      this.#log.warn('out of file descriptors: new connections on every port, admin included, are accepted and closed at once', {
        limit,
        clientConnections: this.#connections((l) => l.clientConnections).map(({ labels, value }) => ({ ...labels, open: value })),
      });
    });
  }

  /** The runners of `invalidation[]` now (a reload may replace them). */
  get buses(): readonly BusRunner[] {
    return this.#buses.runners;
  }

  /** Connections open per listener, both protocols (the `sidecache_client_connections` and `sidecache_upstream_connections` gauges). */
  #connections(count: (l: HttpListener | PostgresListener) => number): { labels: Record<string, string>; value: number }[] {
    return connectionsOf(this.httpListeners, this.postgresListeners, count);
  }

  /** Counters at 0 for every listener, bus and result known now (`metrics/prime.ts`). */
  #primeMetrics(): void {
    const names = (list: readonly { name: string }[]) => list.map((l) => l.name);
    primeMetrics(this.metrics, { http: names(this.httpListeners), postgres: names(this.postgresListeners), buses: names(this.buses) });
  }

  /** A server could not accept (Node reports EMFILE when libuv's reserve descriptor is gone too): counted and logged, never fatal. */
  #acceptError(where: string, err: NodeJS.ErrnoException): void {
    if (err.code === 'EMFILE' || err.code === 'ENFILE') this.metrics.descriptorsExhausted.inc();
    const now = performance.now();
    if (now - this.#acceptWarnedAt < ACCEPT_WARN_INTERVAL_MS) return;
    this.#acceptWarnedAt = now;
    this.#log.warn('a listener could not accept a connection', { listener: where, err: err.code ?? err.message });
  }

  /** `GET /cache`: this process's store and request counters. */
  summary(): Promise<CacheSummary> {
    return summarizeCache(this.store, this.metrics);
  }

  /** `GET /cache/entries`: this process's entries, read back per protocol. */
  async entries(query: EntryQuery): Promise<{ total: number } & Awaited<ReturnType<typeof listEntries>>> {
    return { total: this.store.size, ...(await listEntries(this.store, this.#clock, describeKey, query)) };
  }

  async start(): Promise<void> {
    if (this.#admin !== undefined) this.#adminAddress = await listenAdmin(this.#admin, this.config.admin, this.#log, (err) => this.#acceptError('admin', err));
    this.#descriptors.start();
    // Buses first: a listener must not serve entries no bus would invalidate.
    await Promise.all(this.buses.map((b) => b.start()));
    for (const listener of this.httpListeners) await listener.start();
    for (const listener of this.postgresListeners) await listener.start();
    this.store.startSweeper(SWEEP_INTERVAL_MS);
    this.readiness.setPhase(undefined);
    this.#log.info('ready', { maxBytes: this.store.maxBytes });
  }

  /** Stops accepting, lets work in flight finish until `graceMs`, then closes what is left. */
  async stop(graceMs: number = this.config.shutdownGrace): Promise<StopResult> {
    // One deadline for every step: a bus or the admin server gets what the listeners left of the grace.
    const deadline = performance.now() + graceMs;
    const left = (): number => Math.max(0, deadline - performance.now());
    this.readiness.setPhase('stopping');
    this.store.stopSweeper();
    this.#descriptors.stop();
    const listeners = await Promise.all([...this.httpListeners, ...this.postgresListeners].map((l) => l.stop(graceMs)));
    // Buses close within what is left of the grace: a half-open one would never answer QUIT.
    await settleWithin(Promise.all(this.buses.map((b) => b.stop(left()))), left());
    const forced = (this.#admin !== undefined && (await closeGracefully(this.#admin, left()))) || listeners.includes(true);
    this.#unsubscribe();
    this.#recent.close();
    this.#log.info('stopped', { forced });
    return { forced };
  }

  /** The configuration running now (after reloads, the applied parts of the newest file). */
  get config(): Config {
    return this.#config;
  }

  /**
   * Applies a new configuration without dropping connections or the cache: rules, TTLs, stale
   * windows, tags, buses and shutdownGrace change now; what needs a restart is reported and keeps
   * its running value.
   */
  async reload(next: Config): Promise<ReloadResult> {
    const plan = planReload(this.#config, next, { http: HTTP_RESTART_KEYS, postgres: POSTGRES_RESTART_KEYS });
    const applied: string[] = [];
    for (const entry of plan.http) {
      this.httpListeners.find((l) => l.name === entry.name)!.update(entry);
      applied.push(`http[${entry.name}]`);
    }
    for (const entry of plan.postgres) {
      this.postgresListeners.find((l) => l.name === entry.name)!.update(entry);
      applied.push(`postgres[${entry.name}]`);
    }
    if (plan.buses && !this.#worker) {
      await this.#buses.replace(next, this.#config.shutdownGrace);
      applied.push('invalidation');
    }
    if (next.shutdownGrace !== this.#config.shutdownGrace) applied.push('shutdownGrace');
    this.#config = plan.effective;
    this.#primeMetrics();
    this.metrics.reloads.inc({ result: 'applied' });
    this.metrics.lastReload.set(Date.now() / 1000);
    this.#log.info('config reloaded', { applied, needsRestart: plan.needsRestart });
    return { applied, needsRestart: plan.needsRestart };
  }

  /** Reads the configuration file again and reloads; an invalid file throws and changes nothing. */
  async reloadFromFile(): Promise<ReloadResult> {
    return this.reload(await readForReload(this.#configFile, this.metrics.reloads));
  }

  /** The admin server's bound address (after `start`). */
  get adminAddress(): AddressInfo {
    if (this.#adminAddress === undefined) throw new Error('the admin server is not listening');
    return this.#adminAddress;
  }

  get adminUrl(): string {
    return httpUrlOf(this.adminAddress);
  }
}
