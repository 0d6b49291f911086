/** What every connection of one Postgres listener shares: configuration, store, planner, upstream and reporting. */
import type { SecureContext } from 'node:tls';
import type { Store } from '../../cache/store.js';
import type { InvalidationTarget } from '../../cache/types.js';
import type { Clock } from '../../clock.js';
import type { Millis } from '../../units.js';
import type { PostgresListenerConfig } from '../../config/schema.js';
import type { RequestResult } from '../../events.js';
import type { Logger } from '../../log.js';
import type { LocalInvalidation } from '../local-invalidation.js';
import type { Admission } from './admission.js';
import type { InBandCatalog } from './catalog-in-band.js';
import type { Planner } from './planner.js';
import type { Session } from './session.js';
import type { UpstreamTarget } from './upstream-socket.js';

/** What every connection of one Postgres listener shares. */
export interface PgContext {
  readonly name: string;
  /** Replaced on reload, with `planner` (rules, TTLs and functions). */
  config: PostgresListenerConfig;
  readonly store: Store;
  readonly clock: Clock;
  readonly log: Logger;
  planner: Planner;
  /** Which misses fill the store (`admission`); replaced on reload with `planner`. */
  admission: Admission;
  readonly target: UpstreamTarget;
  /** Present when the listener offers TLS to its clients. */
  readonly tls: SecureContext | undefined;
  /** Where sessions offer themselves to carry catalog questions; undefined when `catalogUrl` names a catalog identity of its own. */
  readonly inBand: InBandCatalog | undefined;
  /** How long the first use of a SQL text waits for its cache plan before going upstream uncached. */
  readonly planWaitMs: Millis;
  /** Hears that the catalog cannot be asked for a database and user (to log once and count it). */
  catalogError(database: string, user: string, err: unknown): void;
  /** Applies an invalidation through the one dispatch path and publishes it to the other replicas. */
  invalidate(target: InvalidationTarget): LocalInvalidation;
  /**
   * Publishes the request event (metrics subscribe to it) and writes the access line when
   * `log.access` is on: `sql` gives only its first word, `sqlstate` is the upstream's (`00000`
   * for success), undefined for an answer from the store.
   */
  report(result: RequestResult, started: Millis, upstreamMs?: Millis, session?: Session, sql?: string, sqlstate?: string): void;
}
