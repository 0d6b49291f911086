/**
 * What a write reaches beyond the relations it names (partitions and parents, views, cascading
 * foreign keys, triggers and rules), asked of the catalog and remembered per database and set of
 * written names; while an answer is pending, the planner holds reads of that database.
 */
import { LRUCache } from 'lru-cache';
import { databaseTag, tableTag } from '../../cache/tags.js';
import type { InvalidationTarget } from '../../cache/types.js';
import type { Catalog, WriteReach } from './catalog.js';
import type { RelationRef } from './classify.js';
import { MEMO_SIZE, PLAN_TTL_MS, MEMO_TTL_RESOLUTION_MS } from './plan-memo.js';

export class WriteReaches {
  /** Per database and set of written names: what a write reaches (only answers, so a write applies it at once). */
  readonly #reach = new LRUCache<string, WriteReach>({ max: MEMO_SIZE, ttl: PLAN_TTL_MS, ttlResolution: MEMO_TTL_RESOLUTION_MS });
  /** Per database, writes whose reach the catalog has not answered yet: plans of that database wait for them. */
  readonly #unresolved = new Map<string, Set<Promise<void>>>();
  /** Bumped when answers are dropped, so an answer asked before is not remembered. */
  #epoch = 0;
  readonly #catalog: Catalog | undefined;

  constructor(catalog: Catalog | undefined) {
    this.#catalog = catalog;
  }

  /** The writes of `database` whose reach is not known yet, if any. */
  pending(database: string): ReadonlySet<Promise<void>> | undefined {
    return this.#unresolved.get(database);
  }

  /** Drops the answers about `database`. */
  forgetDatabase(database: string): void {
    this.#epoch++;
    const prefix = `${database}\u0000`;
    for (const key of this.#reach.keys()) if (key.startsWith(prefix)) this.#reach.delete(key);
  }

  /** Drops every answer. */
  forgetAll(): void {
    this.#epoch++;
    this.#reach.clear();
  }

  /** Drops the answers that reach one of `tags` (table tags). */
  forgetTags(tags: ReadonlySet<string>): void {
    this.#epoch++;
    for (const [key, reach] of this.#reach.entries()) if (reach.names.map(tableTag).some((n) => tags.has(n))) this.#reach.delete(key);
  }

  /**
   * Invalidates what a write to `refs` reaches: the written names at once, and what the catalog
   * expands them to (partitions and parents, views, cascading foreign keys) at once when that
   * answer is known, else when it lands; until then plans of the database wait for it, so the
   * next read of the writing session cannot be answered from an entry the write made stale.
   * Without `ask` (a write inside a transaction block) an answer not known yet is left for the
   * block's end. A table with triggers or rules, or a catalog that cannot be asked, invalidates the database,
   * and calls `unknownCode`: the write ran code the statement does not show (a trigger may call
   * set_config), so the writing session can no longer be modelled.
   */
  afterWrite(
    database: string,
    user: string,
    refs: readonly RelationRef[],
    cascade: boolean,
    ask: boolean,
    invalidate: (target: InvalidationTarget) => void,
    unknownCode: () => void,
  ): void {
    const direct = [...new Set(refs.map((r) => tableTag(r.name)))];
    invalidate({ tags: direct });
    if (this.#catalog === undefined || refs.length === 0) return;
    const key = `${database}\u0000${cascade}\u0000${refs
      .map((r) => `${r.schema ?? ''}.${r.name}`)
      .sort()
      .join(',')}`;
    const apply = (reach: WriteReach): void => {
      if (reach.sideEffects) {
        unknownCode();
        return invalidate({ tags: [databaseTag(database)] });
      }
      const more = reach.names.map(tableTag).filter((t) => !direct.includes(t));
      if (more.length > 0) invalidate({ tags: more });
    };
    const known = this.#reach.get(key);
    if (known !== undefined) return apply(known);
    if (!ask) return;
    const epoch = this.#epoch;
    const resolving = this.#catalog.writeReach(database, user, refs, cascade).then(
      (reach) => {
        if (epoch === this.#epoch) this.#reach.set(key, reach);
        apply(reach);
      },
      () => {
        unknownCode();
        invalidate({ tags: [databaseTag(database)] });
      },
    );
    this.holdUntil(database, resolving);
  }

  /** Plans of `database` wait for `resolving` (what a write reached, as the catalog answers it). */
  holdUntil(database: string, resolving: Promise<void>): void {
    let set = this.#unresolved.get(database);
    if (set === undefined) this.#unresolved.set(database, (set = new Set()));
    const settled = resolving.catch(() => undefined);
    set.add(settled);
    void settled.finally(() => {
      set.delete(settled);
      if (set.size === 0 && this.#unresolved.get(database) === set) this.#unresolved.delete(database);
    });
  }
}
