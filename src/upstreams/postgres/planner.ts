/**
 * Per SQL text, once: the parser's classification (memoized forever, it is pure) and the cache
 * plan that adds the catalog's answers and the listener's rules (memoized a short while, as the
 * schema can change under it). A hit never parses: it only reads these memos.
 */
import { LRUCache } from 'lru-cache';
import type { Millis } from '../../units.js';
import type { PostgresListenerConfig } from '../../config/schema.js';
import { tableTag } from '../../cache/tags.js';
import type { Catalog } from './catalog.js';
import { type Classification, classify, type RelationRef } from './classify.js';

export interface CachePlan {
  cacheable: boolean;
  reason: string | undefined;
  /** `table:<name>` for every relation read, views and partitions resolved. */
  tags: string[];
  ttlMs: Millis;
}

/** How long a plan is trusted before the catalog is asked again (tables may become views, …). */
const PLAN_TTL_MS: Millis = 60_000;
const MEMO_SIZE = 10_000;
/** How long "the catalog could not be asked" stands before it is asked again. */
const CATALOG_RETRY_MS: Millis = 5_000;

export class Planner {
  readonly #classes = new LRUCache<string, Classification>({ max: MEMO_SIZE });
  readonly #plans: LRUCache<string, CachePlan>;
  readonly #pending = new Map<string, Promise<CachePlan>>();
  readonly #facts = new LRUCache<string, Promise<{ names: string[]; problem: string | undefined }>>({ max: MEMO_SIZE, ttl: PLAN_TTL_MS });
  readonly #catalog: Catalog | undefined;
  readonly #config: PostgresListenerConfig;
  readonly #allowed: ReadonlySet<string>;

  constructor(config: PostgresListenerConfig, catalog: Catalog | undefined) {
    this.#config = config;
    this.#catalog = catalog;
    this.#allowed = new Set((config.functions ?? []).map((f) => f.toLowerCase()));
    this.#plans = new LRUCache<string, CachePlan>({ max: MEMO_SIZE, ttl: PLAN_TTL_MS });
  }

  classify(sql: string): Classification {
    let c = this.#classes.get(sql);
    if (c === undefined) {
      c = classify(sql);
      this.#classes.set(sql, c);
    }
    return c;
  }

  /** The plan if it is known; otherwise undefined, and it is worked out in the background. */
  peek(database: string, user: string, sql: string): CachePlan | undefined {
    const key = `${database}\u0000${sql}`;
    const plan = this.#plans.get(key);
    if (plan !== undefined) return plan;
    const c = this.classify(sql);
    // Without relations or unknown functions there is nothing to ask: decide at once.
    if (!c.cacheable || (c.reads.length === 0 && c.functions.every((f) => this.#isAllowed(f)))) {
      const now = this.#decide(c, []);
      this.#plans.set(key, now);
      return now;
    }
    void this.plan(database, user, sql);
    return undefined;
  }

  /** Works out the plan (asking the catalog when needed). Never rejects. */
  plan(database: string, user: string, sql: string): Promise<CachePlan> {
    const key = `${database}\u0000${sql}`;
    const known = this.#plans.get(key);
    if (known !== undefined) return Promise.resolve(known);
    let pending = this.#pending.get(key);
    if (pending === undefined) {
      pending = this.#resolve(database, user, this.classify(sql)).then((plan) => {
        this.#plans.set(key, plan);
        this.#pending.delete(key);
        return plan;
      });
      this.#pending.set(key, pending);
    }
    return pending;
  }

  /** After DDL the catalog's answers may have changed: plans of that database are worked out again. */
  forgetPlans(database: string): void {
    const prefix = `${database}\u0000`;
    for (const key of this.#plans.keys()) if (key.startsWith(prefix)) this.#plans.delete(key);
    for (const key of this.#facts.keys()) if (key.startsWith(prefix)) this.#facts.delete(key);
  }

  /** Tags a write to `names` must invalidate: the names, and what the catalog expands them to. */
  async writeTags(database: string, user: string, names: readonly string[]): Promise<string[]> {
    const tags = new Set(names.map(tableTag));
    if (this.#catalog !== undefined && names.length > 0) {
      // The same memo as reads: a busy writer does not ask the catalog on every statement.
      const facts = await this.#catalogFacts(database, user, names.map((name) => ({ schema: undefined, name })), []);
      for (const n of facts.names) tags.add(tableTag(n));
    }
    return [...tags];
  }

  async #resolve(database: string, user: string, c: Classification): Promise<CachePlan> {
    const no = (reason: string): CachePlan => ({ cacheable: false, reason, tags: [], ttlMs: 0 });
    if (!c.cacheable) return no(c.reason ?? 'not cacheable');
    const unknownFunctions = c.functions.filter((f) => !this.#isAllowed(f));
    const needsCatalog = c.reads.length > 0 || unknownFunctions.length > 0;
    if (needsCatalog && this.#catalog === undefined) return no('the catalog is off: relations and functions cannot be checked');
    let names: string[] = [];
    if (needsCatalog) {
      const facts = await this.#catalogFacts(database, user, c.reads, unknownFunctions);
      if (facts.problem !== undefined) return no(facts.problem);
      names = facts.names;
    }
    return this.#decide(c, names);
  }

  /**
   * The catalog's answer for a set of relations and calls, shared by every SQL text that names the
   * same ones (statements that differ only in constants ask once).
   */
  #catalogFacts(database: string, user: string, relations: readonly RelationRef[], calls: string[]): Promise<{ names: string[]; problem: string | undefined }> {
    const reads = relations.map((r) => `${r.schema ?? ''}.${r.name}`).sort();
    const key = `${database}\u0000${reads.join(',')}\u0000${[...calls].sort().join(',')}`;
    let facts: Promise<{ names: string[]; problem: string | undefined }> | undefined = this.#facts.get(key);
    if (facts === undefined) {
      facts = (async () => {
        try {
          const volatile = await this.#catalog!.volatileFunctions(database, user, calls);
          if (volatile.length > 0) return { names: [], problem: `calls ${volatile.map((v) => v.split('/')[0]).join(', ')}, which is not IMMUTABLE` };
          return await this.#catalog!.relations(database, user, relations);
        } catch (err) {
          // Remembered briefly, so a catalog outage does not cost every new statement a timeout.
          this.#facts.set(key, facts!, { ttl: CATALOG_RETRY_MS });
          return { names: [], problem: `the catalog could not be asked (${(err as Error).message})` };
        }
      })();
      this.#facts.set(key, facts);
    }
    return facts;
  }

  /** The allow list names functions without argument counts (`slugify`, `app.slugify`). */
  #isAllowed(call: string): boolean {
    const name = call.split('/')[0]!.toLowerCase();
    return this.#allowed.has(name) || this.#allowed.has(name.split('.').at(-1)!);
  }

  /** Applies the listener's rules (first match by table) to a statement that may be cached. */
  #decide(c: Classification, names: string[]): CachePlan {
    if (!c.cacheable) return { cacheable: false, reason: c.reason ?? 'not cacheable', tags: [], ttlMs: 0 };
    const rule = this.#config.rules.find((r) => r.tables.some((t) => names.includes(t.toLowerCase())));
    if (rule !== undefined && !rule.cache) return { cacheable: false, reason: `rule for ${rule.tables.join(', ')} says cache: false`, tags: [], ttlMs: 0 };
    return { cacheable: true, reason: undefined, tags: names.map(tableTag), ttlMs: rule?.ttl ?? this.#config.defaultTtl };
  }
}
