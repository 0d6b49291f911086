/**
 * The process `sidecache start` runs with `workers: N` (N > 1): it serves no client. It holds the
 * admin listener, the buses and the reload, forks the workers (`pool.ts`) and keeps them told of
 * every invalidation and of the degradation (docs/workers.md).
 */
import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import { hostname } from 'node:os';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { RecentInvalidations } from '../admin/live.js';
import { Readiness } from '../admin/readiness.js';
import { createAdminServer } from '../admin/server.js';
import { Store } from '../cache/store.js';
import type { Degradation, InvalidationTarget } from '../cache/types.js';
import { realClock } from '../clock.js';
import type { Config } from '../config/schema.js';
import { FanOut } from '../invalidation/fanout.js';
import { servingMode } from '../invalidation/while-down.js';
import { closeGracefully, httpUrlOf, settleWithin } from '../listen.js';
import type { Logger } from '../log.js';
import { primeMetrics } from '../metrics/prime.js';
import { createMetrics, type Metrics } from '../metrics/registry.js';
import { planReload, readForReload } from '../reload.js';
import type { ReloadResult, StopResult } from '../server.js';
import { listenAdmin } from '../server/admin-listen.js';
import { ServerBuses } from '../server/buses.js';
import { HTTP_RESTART_KEYS } from '../upstreams/http/listener.js';
import { POSTGRES_RESTART_KEYS } from '../upstreams/postgres/listener.js';
import { mergeEntries, mergeMetrics, mergeSummaries } from './merge.js';
import { WorkerPool } from './pool.js';
import { RelayDispatcher } from './relay-dispatcher.js';
import { replacementConfig, splitRestart } from './reload-split.js';

/** As in server.ts: how long a client waits for its write's invalidation to reach the other workers and the buses. */
const PUBLISH_WAIT_MS = 2_000;

export interface PrimaryOptions {
  log: Logger;
  configFile?: string;
  publishWaitMs?: number;
}

export class PrimaryServer {
  #config: Config;
  /** Holds no entry: its degradation is the one relayed, its `maxBytes` the configured total. */
  readonly store: Store;
  readonly registry: Registry;
  readonly metrics: Metrics;
  readonly readiness = new Readiness();
  readonly instanceId = `${hostname().slice(0, 100)}/${randomUUID()}`;
  readonly #log: Logger;
  readonly #configFile: string | undefined;
  readonly #pool: WorkerPool;
  readonly #buses: ServerBuses;
  readonly #fanOut: FanOut;
  readonly #admin: http.Server;
  readonly #recent: RecentInvalidations;
  readonly #waitMs: number;
  #adminAddress: AddressInfo | undefined;
  #relayedDegradation: Degradation | undefined;
  #reloading: Promise<unknown> = Promise.resolve();

  constructor(config: Config, options: PrimaryOptions) {
    this.#config = config;
    this.#log = options.log;
    this.#configFile = options.configFile;
    this.#waitMs = options.publishWaitMs ?? PUBLISH_WAIT_MS;
    this.store = new Store({ ...config.cache, clock: realClock });
    ({ registry: this.registry, metrics: this.metrics } = createMetrics(this.store));
    this.#recent = new RecentInvalidations(this.store);
    this.#pool = new WorkerPool({
      count: config.workers,
      config: () => this.#config,
      degradation: () => this.store.degradation,
      spread: (from, target, source, removed) =>
        this.#fanOut.spread(target, source, () => this.#applied(target, source, this.#pool.apply(target, source, { expand: false, except: from }), removed)),
      log: this.#log.child({ component: 'workers' }),
    });
    const invalidationLog = this.#log.child({ component: 'invalidation' });
    const relay = new RelayDispatcher(
      [this.store, invalidationLog],
      (target, source) => void this.#applied(target, source, this.#pool.apply(target, source, { expand: true })),
    );
    this.#fanOut = new FanOut(relay, () => this.#buses.runners, this.#waitMs);
    this.#buses = new ServerBuses(config, {
      store: this.store,
      metrics: this.metrics,
      readiness: this.readiness,
      log: invalidationLog,
      origin: this.instanceId,
      // Tables are expanded in the workers, which hold the catalogs.
      expandTables: () => undefined,
      dispatcher: relay,
      degraded: (degradation) => this.#relayDegradation(degradation),
    });
    this.readiness.configure(
      () => this.#config.readyz.requireBuses,
      () => servingMode(this.store.degradation),
    );
    for (const index of this.#pool.indexes) this.readiness.add(`worker ${index}`, () => this.#pool.reason(index));
    this.#primeMetrics();
    this.#admin = createAdminServer({
      config: config.admin,
      store: this.store,
      registry: {
        contentType: this.registry.contentType,
        metrics: async () => (await this.#merged()).metrics(),
        getMetricsAsJSON: async () => (await this.#merged()).getMetricsAsJSON(),
      },
      metrics: this.metrics,
      invalidate: (target, source) => this.#invalidate(target, source),
      summary: async () => mergeSummaries(this.#config.cache.maxBytes, await this.#pool.askAll({ q: 'summary' })),
      entries: async (query) => mergeEntries(query, await this.#pool.askAll({ q: 'entries', query })),
      readiness: this.readiness,
      recent: this.#recent,
      log: this.#log.child({ component: 'admin' }),
      reload: () => this.reloadFromFile(),
      // One worker answers: every worker has the same listeners and asks the same catalog.
      explain: (listener, sql, database, user) =>
        this.#config.postgres.some((l) => l.name === listener) ? this.#pool.ask(undefined, { q: 'explain', listener, sql, database, user }) : undefined,
      explainHttp: (listener, url, method, headers, reveal) =>
        this.#config.http.some((l) => l.name === listener)
          ? (this.#pool.ask(undefined, { q: 'explainHttp', listener, url, method, headers, reveal }) as Promise<object>)
          : undefined,
      buses: () => this.#buses.runners.map((b) => ({ name: b.name, connected: b.reason === undefined, reason: b.reason ?? null })),
    });
  }

  /**
   * A stricter degradation reaches the workers at once; a looser one (a bus back) after this turn
   * of the event loop: a bus that comes back reports itself up, then flushes for its gap in the
   * same turn, and no worker may serve by the looser rule before it has that flush (IPC keeps order).
   */
  #relayDegradation(degradation: Degradation | undefined): void {
    if (maxAgeOf(degradation) <= maxAgeOf(this.#relayedDegradation)) return this.#sendDegradation(degradation);
    setImmediate(() => this.#sendDegradation(this.store.degradation));
  }

  #sendDegradation(degradation: Degradation | undefined): void {
    this.#relayedDegradation = degradation;
    this.#pool.broadcast({ t: 'degrade', degradation });
  }

  get config(): Config {
    return this.#config;
  }

  /** `POST /invalidate`: every worker applies it, the buses publish it; `removed` is the workers' sum. */
  #invalidate(target: InvalidationTarget, source: string): { removed: Promise<number>; published: Promise<void> } {
    const applied = this.#applied(target, source, this.#pool.apply(target, source, { expand: false }));
    return { removed: applied, published: this.#fanOut.spread(target, source, () => applied) };
  }

  /** Keeps what the workers applied for the live page's recent invalidations; resolves with their count (and `already`'s). */
  #applied(target: InvalidationTarget, source: string, removed: Promise<number>, already = 0): Promise<number> {
    return removed.then((n) => {
      this.#recent.note(source, n + already, target);
      return n + already;
    });
  }

  /** The primary's registry and every serving worker's, aggregated (a worker that does not answer is left out). */
  async #merged(): Promise<Registry> {
    const [own, theirs] = await Promise.all([this.registry.getMetricsAsJSON(), this.#pool.askAll({ q: 'metrics' })]);
    return mergeMetrics(
      own,
      theirs.map((a) => a.value as typeof own),
    );
  }

  #primeMetrics(): void {
    const names = (list: readonly { name: string }[]) => list.map((l) => l.name);
    primeMetrics(this.metrics, { http: names(this.#config.http), postgres: names(this.#config.postgres), buses: names(this.#buses.runners) });
  }

  async start(): Promise<void> {
    this.#adminAddress = await listenAdmin(this.#admin, this.#config.admin, this.#log);
    // Buses first, as in one process: no worker serves entries no bus would invalidate.
    await Promise.all(this.#buses.runners.map((b) => b.start()));
    // A reload (POST /reload answers already) waits until the first workers serve.
    const started = this.#pool.start();
    this.#reloading = started.catch(() => undefined);
    await started;
    this.readiness.setPhase(undefined);
    this.#log.info('ready', { workers: this.#config.workers, maxBytes: this.#config.cache.maxBytes });
  }

  /** Workers first (their writes still reach the buses), then the buses, then the admin: all within `graceMs`. */
  async stop(graceMs: number = this.#config.shutdownGrace): Promise<StopResult> {
    const deadline = performance.now() + graceMs;
    const left = (): number => Math.max(0, deadline - performance.now());
    this.readiness.setPhase('stopping');
    const killed = await this.#pool.stop(graceMs);
    await settleWithin(Promise.all(this.#buses.runners.map((b) => b.stop(left()))), left());
    const forced = (await closeGracefully(this.#admin, left())) || killed;
    this.#recent.close();
    this.#log.info('stopped', { forced });
    return { forced };
  }

  /** Validated here; then the buses change here and every worker applies the rest. */
  /** One at a time: a reload may start new workers, and a second one waits until they serve. */
  reload(next: Config): Promise<ReloadResult> {
    const run = this.#reloading.then(() => this.#reload(next));
    this.#reloading = run.catch(() => undefined);
    return run;
  }

  async #reload(next: Config): Promise<ReloadResult> {
    const plan = planReload(this.#config, next, { http: HTTP_RESTART_KEYS, postgres: POSTGRES_RESTART_KEYS });
    const applied = [...plan.http.map((l) => `http[${l.name}]`), ...plan.postgres.map((l) => `postgres[${l.name}]`)];
    if (plan.buses) {
      await this.#buses.replace(next, this.#config.shutdownGrace);
      applied.push('invalidation');
    }
    if (next.shutdownGrace !== this.#config.shutdownGrace) applied.push('shutdownGrace');
    const { byNewWorkers, instance } = splitRestart(plan.needsRestart);
    let needsRestart = plan.needsRestart;
    if (byNewWorkers.length > 0 && (await this.#replaceWorkers(replacementConfig(this.#config, next)))) {
      applied.push(...byNewWorkers);
      needsRestart = instance;
    } else await this.#reloadWorkers(plan.effective, next);
    this.#primeMetrics();
    this.metrics.reloads.inc({ result: 'applied' });
    this.metrics.lastReload.set(Date.now() / 1000);
    this.#log.info('config reloaded', { applied, needsRestart });
    return { applied, needsRestart };
  }

  /** New workers on `config` beside the old, which stop once the new serve (nginx's reload); false when they could not start. */
  async #replaceWorkers(config: Config): Promise<boolean> {
    try {
      await this.#pool.replaceAll(config);
      this.#config = config;
      return true;
    } catch (err) {
      this.#log.error('the new workers did not start; the running ones keep serving and the keys that need them are not applied', {
        err: (err as Error).message,
      });
      return false;
    }
  }

  /** The running workers apply what they can in place; one started from now on builds from `effective`. */
  async #reloadWorkers(effective: Config, next: Config): Promise<void> {
    this.#config = effective;
    const results = await Promise.allSettled(this.#pool.indexes.map((index) => this.#pool.ask(index, { q: 'reload', config: next })));
    for (const [i, result] of results.entries())
      if (result.status === 'rejected') this.#log.warn('a worker did not apply the reload', { worker: i + 1, err: (result.reason as Error).message });
  }

  async reloadFromFile(): Promise<ReloadResult> {
    return this.reload(await readForReload(this.#configFile, this.metrics.reloads));
  }

  get adminUrl(): string {
    if (this.#adminAddress === undefined) throw new Error('the admin server is not listening');
    return httpUrlOf(this.#adminAddress);
  }
}

/** How old an entry may be served: without degradation, any age. */
function maxAgeOf(degradation: Degradation | undefined): number {
  return degradation?.maxAgeMs ?? Infinity;
}
