import type { Readiness } from '../admin/readiness.js';
import type { Store } from '../cache/store.js';
import type { Degradation } from '../cache/types.js';
import type { Config } from '../config/schema.js';
import { Dispatcher, type ExpandTables } from '../invalidation/dispatch.js';
import { type BusHooks, BusRunner } from '../invalidation/runner.js';
import { busTransports } from '../invalidation/transports.js';
import { degradationOf } from '../invalidation/while-down.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics/registry.js';

export interface ServerBusesDeps {
  store: Store;
  metrics: Metrics;
  readiness: Readiness;
  log: Logger;
  /** Sent as `origin` in what the buses publish. */
  origin: string;
  /** Bus messages name tables as they were written (a partition, a trigger's table): the listeners' catalogs expand them. */
  expandTables: ExpandTables;
  /** Where bus messages go instead of this store's dispatcher (the primary of `workers`: to every worker). */
  dispatcher?: Dispatcher;
  /** Told of every change of degradation (the primary of `workers` relays it to every worker). */
  degraded?: (degradation: Degradation | undefined) => void;
}

/**
 * The runners of `invalidation[]` and what they drive: their metrics and /readyz entries, the
 * store's degradation while one is down, and their replacement on a reload.
 */
export class ServerBuses {
  runners: readonly BusRunner[];
  readonly #deps: ServerBusesDeps;
  readonly #hooks: BusHooks;
  readonly #dispatcher: Dispatcher;
  readonly #settings = new WeakMap<BusRunner, string>();

  constructor(config: Config, deps: ServerBusesDeps) {
    this.#deps = deps;
    const { metrics } = deps;
    this.#hooks = {
      state: (bus: string, up: boolean) => {
        metrics.busConnected.set({ bus }, up ? 1 : 0);
        this.#updateDegradation();
      },
      gap: (bus: string) => metrics.busGaps.inc({ bus }),
      badMessage: (bus: string) => metrics.invalidationErrors.inc({ source: bus }),
      echo: (bus: string) => metrics.busEchoes.inc({ bus }),
      published: (bus: string, result: 'sent' | 'failed') => metrics.busPublishes.inc({ bus, result }),
      outbox: (bus: string, names: number) => metrics.busOutbox.set({ bus }, names),
    };
    this.#dispatcher = deps.dispatcher ?? new Dispatcher(deps.store, deps.log, deps.expandTables);
    this.runners = this.#make(config);
  }

  /**
   * Unchanged buses keep their subscription; the others are replaced, new ones subscribed before
   * the old ones stop, so that some subscription listens all along. A new bus whose predecessor
   * was down (or still owed a flush) handles the cache as after a gap.
   */
  async replace(next: Config, graceMs: number): Promise<void> {
    const old = this.runners;
    const fresh = this.#make(next, old);
    const added = fresh.filter((b) => !old.includes(b));
    const dropped = old.filter((b) => !fresh.includes(b));
    // Until it stops, a predecessor of the same name stands in for the new bus on the gauge and /readyz.
    await Promise.all(added.map((b) => b.start(dropped.find((d) => d.name === b.name))));
    const owed = new Set(dropped.filter((b) => b.missed).map((b) => b.name));
    for (const bus of dropped) bus.handOutbox(added.find((b) => b.name === bus.name));
    this.runners = fresh;
    await Promise.all(dropped.map((b) => b.stop(graceMs)));
    for (const bus of dropped) if (!fresh.some((b) => b.name === bus.name)) this.#deps.readiness.remove(`bus ${bus.name}`);
    for (const bus of added) {
      bus.takeOver();
      if (owed.has(bus.name)) bus.noteGap();
    }
    this.#updateDegradation();
  }

  /** While a bus is down, the store serves by the strictest `whileDown` of those down (docs/contracts.md). */
  #updateDegradation(): void {
    // Hooks may fire while the constructor builds the buses.
    const degradation = degradationOf(this.runners ?? []);
    this.#deps.store.degrade(degradation);
    this.#deps.degraded?.(degradation);
    this.#deps.metrics.servingDegraded.set({ mode: 'bypass' }, degradation?.maxAgeMs === 0 ? 1 : 0);
    this.#deps.metrics.servingDegraded.set({ mode: 'ttl' }, degradation !== undefined && degradation.maxAgeMs > 0 ? 1 : 0);
  }

  /** A postgres-wal bus's slot lag: the gauge, and a warning (once a minute) past its maxSlotLag. */
  #walLag(bus: string, bytes: number, over: boolean): void {
    this.#deps.metrics.walSlotLag.set({ bus }, bytes);
    if (over)
      this.#deps.log.warnEvery('SC_WARN_WAL_SLOT_LAG', `${bus}: the replication slot holds back ${bytes} bytes of WAL, more than maxSlotLag`, bus, 60_000, {
        bus,
        bytes,
      });
  }

  /** Runners for `invalidation[]`, reusing those of `reuse` whose entry is unchanged. */
  #make(config: Config, reuse: readonly BusRunner[] = []): BusRunner[] {
    const buses = busTransports(config.invalidation, { walLag: (bus, bytes, over) => this.#walLag(bus, bytes, over) }).map(
      ({ transport, gap, maxMessageBytes, publish, whileDown, settings }) => {
        const same = reuse.find((b) => b.name === transport.name && this.#settings.get(b) === settings);
        if (same !== undefined) return same;
        const runner = new BusRunner(transport, {
          gap,
          whileDown,
          publish,
          origin: this.#deps.origin,
          maxMessageBytes,
          dispatcher: this.#dispatcher,
          hooks: this.#hooks,
          log: this.#deps.log,
        });
        this.#settings.set(runner, settings);
        return runner;
      },
    );
    for (const bus of buses) this.#deps.readiness.add(`bus ${bus.name}`, () => bus.reason, { degrading: true });
    return buses;
  }
}
