/** What completed statements do to the cache: writes and DDL invalidate what they touch. */
import { databaseTag, tableTag } from '../../cache/tags.js';
import type { PgContext } from './context.js';
import type { Session } from './session.js';

/**
 * Writes and DDL invalidate what they touch when the statement completes and again when the
 * transaction ends (docs/architecture.md "Writes in transactions").
 */
export class WriteEffects {
  readonly #ctx: PgContext;
  readonly #txWrites = new Set<string>();
  #txAll = false;

  constructor(ctx: PgContext) {
    this.#ctx = ctx;
  }

  /** Applies the writes of one finished request; `session.idle` says whether a transaction ended. */
  apply(session: Session, executed: readonly string[]): void {
    const { planner } = this.#ctx;
    for (const sql of executed) {
      const c = planner.classify(sql);
      if (c.cacheable && c.session === 'none') continue;
      if (c.writes.length > 0) {
        const names = c.writes.map((w) => w.name);
        this.#invalidateTables(session, names);
        for (const n of names) this.#txWrites.add(n);
      }
      // After DDL the catalog's answers (views, partitions) may have changed.
      if (c.invalidatesAll || (c.writes.length > 0 && c.reason === 'DDL')) planner.forgetPlans(session.database);
      if (c.invalidatesAll) {
        this.#ctx.invalidate({ tags: [databaseTag(session.database)] });
        this.#txAll = true;
      }
    }
    if (!session.idle) return;
    // The transaction ended: what it wrote is invalidated again, as readers may have filled in between.
    if (this.#txWrites.size > 0) this.#invalidateTables(session, [...this.#txWrites]);
    if (this.#txAll) this.#ctx.invalidate({ tags: [databaseTag(session.database)] });
    this.#txWrites.clear();
    this.#txAll = false;
  }

  #invalidateTables(session: Session, names: string[]): void {
    const tags = names.map(tableTag);
    this.#ctx.invalidate({ tags });
    // Views over, and partitions of, what was written: the catalog knows them.
    void this.#ctx.planner.writeTags(session.database, session.user, names).then((expanded) => {
      const more = expanded.filter((t) => !tags.includes(t));
      if (more.length > 0) this.#ctx.invalidate({ tags: more });
    });
  }
}
