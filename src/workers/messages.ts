/**
 * What the primary and its workers say to each other over the cluster IPC channel (JSON; one
 * channel per worker, delivered in order). docs/workers.md describes the exchanges.
 */
import type { Degradation, InvalidationTarget } from '../cache/types.js';
import type { Config } from '../config/schema.js';

/** The primary → worker messages. */
export type ToWorker =
  /** The answer to `hello`: what to build. `config` is the primary's (the worker takes its share of `cache`). */
  | { t: 'init'; index: number; workers: number; config: Config; degradation: Degradation | undefined }
  /**
   * An invalidation to apply: a bus's (`expand`: tables named are expanded by the listeners'
   * catalogs, as a bus message is), or another worker's or the admin's. With `id`, answered by `applied`.
   */
  | { t: 'apply'; target: InvalidationTarget; source: string; expand: boolean; id?: number }
  /** How the store serves while a bus is down (`whileDown`), undefined once every bus is up. */
  | { t: 'degrade'; degradation: Degradation | undefined }
  /** A question for the admin (`Question`); answered by `answer`. */
  | { t: 'ask'; id: number; question: Question }
  /** The answer to a worker's `invalidate`: peers and buses have it (or the publish wait ran out). */
  | { t: 'spread'; id: number }
  | { t: 'stop'; graceMs: number };

/** The worker → primary messages. */
export type FromWorker =
  | { t: 'hello' }
  /** Every listener is bound: the worker serves. */
  | { t: 'ready' }
  /** A local invalidation this worker applied: to the other workers and the buses, answered by `spread`. */
  | { t: 'invalidate'; id: number; target: InvalidationTarget; source: string; removed: number }
  | { t: 'applied'; id: number; removed: number }
  | { t: 'answer'; id: number; value?: unknown; error?: string };

/** What the admin asks of a worker. */
export type Question =
  | { q: 'metrics' }
  | { q: 'summary' }
  | { q: 'entries'; query: import('../admin/entries.js').EntryQuery }
  | { q: 'explain'; listener: string; sql: string; database: string | undefined; user: string | undefined }
  | { q: 'explainHttp'; listener: string; url: string; method: string; headers: Record<string, string | string[] | undefined>; reveal: boolean }
  | { q: 'reload'; config: Config };
