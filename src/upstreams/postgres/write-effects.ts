/** What completed statements do to the cache: writes and DDL invalidate what they reach. */
import { databaseTag } from '../../cache/tags.js';
import type { InvalidationTarget } from '../../cache/types.js';
import type { PgContext } from './context.js';
import type { RelationRef } from './classify.js';
import type { Session } from './session.js';
import { callsOf } from './session-effects.js';

/**
 * Writes and DDL invalidate what they reach when the statement completes and again when the
 * transaction ends (docs/architecture.md "Writes in transactions"); an autocommit statement, whose
 * end is its transaction's, once. What a write reaches beyond
 * the names it writes (partitions, parents, views, cascading foreign keys) is applied at once when
 * the planner knows it, else the database's plans wait for it (`WriteReaches.afterWrite`): the next
 * read of the session never meets an entry the write made stale.
 */
export class WriteEffects {
  readonly #ctx: PgContext;
  /** What the open transaction wrote, by `schema.name`. */
  readonly #txWrites = new Map<string, RelationRef>();
  #txCascade = false;
  #txAll = false;
  #txCluster = false;
  /** The publications of the invalidations the request being applied made at once. */
  #published: Promise<void>[] | undefined;

  constructor(ctx: PgContext) {
    this.#ctx = ctx;
  }

  /**
   * Applies the writes of one finished request; `session.idle` (or a COMMIT AND CHAIN) says whether
   * a transaction ended. Returns, when it invalidated anything, the promise of its publication to
   * the other replicas: the client hears that the request ended once it settles.
   */
  apply(session: Session, executed: readonly string[], unknownPortal = false): Promise<void> | undefined {
    this.#published = [];
    try {
      this.#apply(session, executed, unknownPortal);
      return this.#published.length === 0 ? undefined : Promise.all(this.#published).then(() => undefined);
    } finally {
      this.#published = undefined;
    }
  }

  #apply(session: Session, executed: readonly string[], unknownPortal: boolean): void {
    const { planner } = this.#ctx;
    let committed = false;
    // The transaction's writes so far, if they are those of one statement of this request: an
    // autocommit write, whose end is its statement's end (see below).
    const earlierWrites = this.#txWrites.size > 0;
    let writers = 0;
    let lastCascade = false;
    // An Execute of a portal sidecache does not know (SQL PREPARE, DECLARE) ran something unseen.
    if (unknownPortal) {
      this.#invalidateAll(session, false);
      this.#txAll = true;
    }
    for (const sql of executed) {
      const c = planner.classify(sql);
      // A statement the planner vouched for (a cacheable plan: no view code refused, no call that
      // may write) writes nothing and changes nothing: the checks below would each find that again.
      if (c.cacheable && c.session === 'none' && planner.peek(session.database, session.user, sql)?.cacheable === true) continue;
      // A function it calls may write tables sidecache cannot name: the whole database. Calls in a
      // cursor's or COPY's query, or in the body of a view the planner refused, count too.
      // A verdict the catalog has not given: a user function counts as writing; a view's body is
      // judged when its plan is known, and reads of the database wait for that.
      const viewCode = planner.refusedForViewCode(session.database, session.user, sql);
      if (viewCode instanceof Promise) this.#whenViewCode(session, viewCode);
      const viaCalls =
        planner.mayWrite(session.database, sql, c) ||
        (!c.cacheable && planner.mayBeUserFunction(session.database, session.user, callsOf(sql)) !== false) ||
        viewCode === true;
      if (c.cacheable && c.session === 'none' && !viaCalls) continue;
      committed ||= c.commits;
      if (c.writes.length > 0) {
        // Inside a transaction block, what the write reaches beyond its tables is asked at the
        // block's end: no session's reads wait on a transaction, and the in-band catalog cannot ask
        // on a session inside one (other sessions cannot see the rows before the COMMIT anyway).
        this.#invalidateTables(session, c.writes, c.cascade, session.idle);
        for (const w of c.writes) this.#txWrites.set(`${w.schema ?? ''}.${w.name}`, w);
        this.#txCascade ||= c.cascade;
        writers++;
        lastCascade = c.cascade;
      }
      // After DDL the catalog's answers (views, partitions) may have changed.
      if (c.invalidatesAll || (c.writes.length > 0 && c.reason === 'DDL')) planner.forgetPlans(session.database);
      if (c.invalidatesAll || viaCalls) this.#invalidateAll(session, c.cluster);
      this.#txAll ||= c.invalidatesAll || viaCalls;
      this.#txCluster ||= c.cluster;
    }
    if (!session.idle && !committed) return;
    // The transaction ended: what it wrote is invalidated again, as readers may have filled in
    // between. Not when it was one statement of this request that already did exactly that (its
    // tables, with their reach, the session idle): an autocommit write ends with its statement, in
    // this same turn, so no fill can have begun in between, and the repeat would only invalidate,
    // publish and ask the catalog twice per write.
    const sameAsStatement = !earlierWrites && writers === 1 && session.idle && lastCascade === this.#txCascade;
    if (this.#txWrites.size > 0 && !sameAsStatement) this.#invalidateTables(session, [...this.#txWrites.values()], this.#txCascade, true);
    if (this.#txAll) this.#invalidateAll(session, this.#txCluster);
    this.#txWrites.clear();
    this.#txCascade = false;
    this.#txAll = false;
    this.#txCluster = false;
  }

  /** Invalidates the written tables, and what they reach when `reach` (asked of the catalog unless known). */
  #invalidateTables(session: Session, writes: readonly RelationRef[], cascade: boolean, reach: boolean): void {
    this.#ctx.planner.writes.afterWrite(
      session.database,
      session.user,
      writes,
      cascade,
      reach,
      (target) => this.#invalidate(target),
      () => session.taint('a write ran triggers or rules'),
    );
  }

  #whenViewCode(session: Session, verdict: Promise<boolean>): void {
    this.#ctx.planner.writes.holdUntil(
      session.database,
      verdict.then((refused) => {
        if (refused) this.#invalidateAll(session, false);
      }),
    );
  }

  /** Everything of the database, or with `cluster` every database of the server (entries carry the planner's cluster tag). */
  #invalidateAll(session: Session, cluster: boolean): void {
    const { planner } = this.#ctx;
    if (cluster) planner.forgetAll();
    this.#invalidate({ tags: [cluster ? planner.clusterTag : databaseTag(session.database)] });
  }

  /**
   * Through the one dispatch path. What is invalidated later (a write's reach the catalog answers
   * after the request ended) is published as early as it is known, without holding the client.
   */
  #invalidate(target: InvalidationTarget): void {
    const { published } = this.#ctx.invalidate(target);
    this.#published?.push(published);
  }
}
