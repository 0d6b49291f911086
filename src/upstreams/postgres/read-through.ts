/**
 * The cache decision and fill for one statement of a connection: a simple Query or an extended
 * batch that may be cached is answered from the store, or its response is captured for the store
 * (one fill per key across sessions), or it goes upstream uncached.
 */
import { type EntryInput, Space } from '../../cache/types.js';
import { databaseTag } from '../../cache/tags.js';
import type { Millis } from '../../units.js';
import { type Batch, type Batches, executes } from './batch.js';
import { Capture } from './capture.js';
import type { PgContext } from './context.js';
import type { Frame } from './framing.js';
import { batchKey, queryKey } from './key.js';
import { decodeQuery } from './messages.js';
import type { CachePlan } from './cache-plan.js';
import type { ResponseQueue, UpstreamSlot } from './response-queue.js';
import type { Session } from './session.js';

/** Every Postgres listener's entries: captured response bytes, no metadata. */
export const PG_SPACE = new Space<undefined>('postgres');
/** Sessions that may wait on one fill; more go upstream on their own. */
const MAX_WAITERS = 1000;

/** What a cacheable request needs, whichever way it is answered. */
interface Cacheable {
  key: string;
  plan: CachePlan;
  sql: string;
  started: Millis;
  /** Sends the request upstream; its response belongs to `slot`. */
  forward(slot: UpstreamSlot): void;
  /** What answering from the store (with these bytes) changes in the session. */
  onHit(bytes: Buffer): void;
}

/** What the read-through of one connection needs from it. */
export interface ReadThroughOptions {
  readonly ctx: PgContext;
  readonly session: Session;
  readonly queue: ResponseQueue;
  readonly batches: Batches;
  /** Writes bytes to the upstream. */
  send(bytes: Buffer): void;
}

export class ReadThrough {
  readonly #ctx: PgContext;
  readonly #session: Session;
  readonly #queue: ResponseQueue;
  readonly #batches: Batches;
  readonly #send: (bytes: Buffer) => void;

  constructor(options: ReadThroughOptions) {
    this.#ctx = options.ctx;
    this.#session = options.session;
    this.#queue = options.queue;
    this.#batches = options.batches;
    this.#send = options.send;
  }

  /**
   * A simple Query. Returns a promise while the session must hold its later requests (a plan or
   * another session's fill to wait for), so responses keep their order.
   */
  query(frame: Frame, released = false): Promise<void> | undefined {
    const sql = decodeQuery(frame.bytes);
    const started = this.#ctx.clock.now();
    const classification = this.#ctx.planner.classify(sql);
    // sidecache's own connections to a database must be gone before it is dropped, or PostgreSQL refuses.
    if (classification.dropsDatabase !== undefined && !released) {
      return this.#ctx.planner.releaseDatabase(classification.dropsDatabase).then(() => this.query(frame, true));
    }
    const cacheable = classification.cacheable;
    const session = this.#session;
    const request = (plan: CachePlan): Cacheable => ({
      key: queryKey(session.fingerprint, sql),
      plan,
      sql,
      started,
      forward: () => this.#send(frame.bytes),
      onHit: () => undefined,
    });
    // `bypass` when the listener decided not to use the cache, `miss` when it could not tell in time.
    const pass = (result: 'miss' | 'bypass'): void => {
      this.#queue.open([sql], !cacheable, result);
      this.#send(frame.bytes);
    };
    if (!cacheable || !this.#usable() || this.#ctx.store.bypassing) {
      pass('bypass');
      return undefined;
    }
    return this.#withPlan(sql, request, pass);
  }

  /** An extended batch held back until its Sync; the same contract as `query`. */
  batch(batch: Batch, sync: Frame): Promise<void> | undefined {
    const session = this.#session;
    const sql = batch.sql;
    const pass = (result: 'miss' | 'bypass'): void => {
      batch.slot = this.#queue.open([], false, executes(batch) ? result : undefined);
      this.#batches.forward(batch, batch.slot);
      this.#send(sync.bytes);
    };
    if (!executes(batch) || sql === undefined || !this.#ctx.planner.classify(sql).cacheable || !this.#usable() || this.#ctx.store.bypassing) {
      pass('bypass');
      return undefined;
    }
    const started = this.#ctx.clock.now();
    return this.#withPlan(
      sql,
      (plan) => ({
        key: batchKey(session.fingerprint, {
          shape: batch.shape,
          sql,
          types: batch.types,
          description: batch.description,
          bindTail: batch.bindTail,
          bindDigest: batch.bindDigest,
        }),
        plan,
        sql,
        started,
        forward: (slot) => {
          slot.executed = [];
          this.#batches.forward(batch, slot);
          this.#send(sync.bytes);
        },
        onHit: (bytes) => this.#batches.answered(batch, bytes),
      }),
      pass,
    );
  }

  /** The session may use the cache: idle, untainted, no verdict pending, and nothing ahead may change that. */
  #usable(): boolean {
    const session = this.#session;
    return session.idle && !session.tainted && !session.held && session.readsAsServer && !this.#queue.uncertain;
  }

  /**
   * Uses the statement's cache plan, waiting for it the first time a SQL text is seen (one catalog
   * question; later requests of the session wait behind it, so order holds).
   */
  #withPlan(sql: string, request: (plan: CachePlan) => Cacheable, pass: (result: 'miss' | 'bypass') => void): Promise<void> | undefined {
    const { planner } = this.#ctx;
    const session = this.#session;
    // The caller checked that the session may use the cache; nothing runs in between on this path.
    const use = (plan: CachePlan): Promise<void> | undefined => {
      if (plan.cacheable) return this.#cached(request(plan));
      pass('bypass');
      return undefined;
    };
    const plan = planner.peek(session.database, session.user, sql);
    if (plan !== undefined) return use(plan);
    // A slow catalog must not stall the session: past a short wait the statement goes upstream uncached.
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((resolve) => (timer = setTimeout(resolve, this.#ctx.planWaitMs, undefined)));
    return Promise.race([planner.plan(session.database, session.user, sql), late]).then((known) => {
      clearTimeout(timer);
      // Earlier requests may have finished meanwhile: ask again whether the session may use the cache.
      if (known !== undefined && this.#usable()) return use(known);
      pass(known === undefined ? 'miss' : 'bypass');
      return undefined;
    });
  }

  /** Answers from the store, or leads the fill, or waits on another session's fill of the same key. */
  #cached(request: Cacheable): Promise<void> | undefined {
    const { store } = this.#ctx;
    const entry = store.get(request.key, PG_SPACE);
    if (entry !== undefined) {
      request.onHit(entry.body as Buffer);
      this.#queue.answer(entry.body as Buffer);
      this.#ctx.report('hit', request.started, undefined, this.#session, request.sql);
      return undefined;
    }
    const forwardAlone = (): void => request.forward(this.#queue.open([request.sql], false, 'miss'));
    // Nothing below runs before the fill starts: whether one is in flight is asked once.
    const alone = store.flightOf(request.key) === undefined;
    // Not worth storing yet (admission.ts): the result goes to the client alone, copied nowhere.
    if (alone && !this.#ctx.admission.admit(request.key)) {
      forwardAlone();
      return undefined;
    }
    let ranLoader = false;
    const loader = (): Promise<EntryInput<undefined> | null> => {
      ranLoader = true;
      return new Promise((resolve) => {
        const slot = this.#queue.open([request.sql], false, 'miss', new Capture(store.maxEntryBytes));
        slot.onEnd = (bytes) => resolve(bytes === undefined ? null : entryInput(bytes, request.plan));
        request.forward(slot);
      });
    };
    const tags = fillTags(request.plan, this.#session.database);
    const context = { protocol: 'postgres', listener: this.#ctx.name };
    if (alone) {
      store.fill(request.key, tags, loader, { context, space: PG_SPACE }).catch(() => undefined);
      return undefined;
    }
    return store
      .fill(request.key, tags, loader, { context, space: PG_SPACE, maxWaiters: MAX_WAITERS, timeoutMs: this.#ctx.config.connectTimeout + 30_000 })
      .then(
        (outcome) => {
          if (outcome.leader || ranLoader) return;
          if (outcome.entry !== null) {
            request.onHit(outcome.entry.body as Buffer);
            this.#queue.answer(outcome.entry.body as Buffer);
            this.#ctx.report('miss', request.started, undefined, this.#session, request.sql);
            return;
          }
          forwardAlone();
        },
        () => {
          // The fill failed or took too long: this session asks for itself.
          if (!ranLoader) forwardAlone();
        },
      );
  }
}

/** The tags of a plan's fills, with its database's: one frozen array per plan, which its entries share (cache/entry.ts). */
const FILL_TAGS = new WeakMap<CachePlan, { database: string; tags: readonly string[] }>();

function fillTags(plan: CachePlan, database: string): readonly string[] {
  const known = FILL_TAGS.get(plan);
  if (known?.database === database) return known.tags;
  const tags = Object.freeze([...plan.tags, databaseTag(database)]);
  FILL_TAGS.set(plan, { database, tags });
  return tags;
}

function entryInput(bytes: Buffer, plan: CachePlan): EntryInput<undefined> {
  return { body: bytes, tags: plan.tags, ttlMs: plan.ttlMs };
}
