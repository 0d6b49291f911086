/**
 * Per SQL text, once: the parser's classification (memoized forever, it is pure) and the cache
 * plan that adds the catalog's answers and the listener's rules (memoized a short while, as the
 * schema can change under it). The catalog's answers are remembered too: relations and user
 * functions per set of names, built-in functions per database. A hit never parses: it only reads
 * these memos.
 */
import { LRUCache } from 'lru-cache';
import type { Millis } from '../../units.js';
import type { PostgresListenerConfig } from '../../config/schema.js';
import { tableTag } from '../../cache/tags.js';
import type { Catalog, RelationFacts } from './catalog.js';
import { type Classification, classify, type RelationRef } from './classify.js';
import type { BuiltinFunctions } from './volatility.js';

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
/**
 * How long a database's built-in functions are trusted. They change only with the server's
 * version (DDL cannot make a built-in volatile; a function an extension adds later is unknown to
 * them and asked about on its own), so DDL does not drop them; the hour bounds an upgrade in place.
 */
const BUILTINS_TTL_MS: Millis = 3_600_000;

/** One database's built-ins: loading, or loaded (then `loaded` is set, for answers without waiting). */
interface BuiltinsMemo {
  readonly loading: Promise<BuiltinFunctions>;
  loaded: BuiltinFunctions | undefined;
}

const no = (reason: string): CachePlan => ({ cacheable: false, reason, tags: [], ttlMs: 0 });

export class Planner {
  readonly #classes = new LRUCache<string, Classification>({ max: MEMO_SIZE });
  readonly #plans: LRUCache<string, CachePlan>;
  readonly #pending = new Map<string, Promise<CachePlan>>();
  readonly #facts = new LRUCache<string, Promise<RelationFacts>>({ max: MEMO_SIZE, ttl: PLAN_TTL_MS });
  /** Per set of calls the built-ins do not answer: the catalog's reason they are not all IMMUTABLE, if any. */
  readonly #calls = new LRUCache<string, Promise<string | undefined>>({ max: MEMO_SIZE, ttl: PLAN_TTL_MS });
  /**
   * Per database, every built-in function in one query (some 3,000 rows) rather than a question
   * per new name: calls of built-ins, most calls, are then checked without a round trip, so a
   * SQL text's first use rarely waits for its plan and later ones never do.
   */
  readonly #builtins = new LRUCache<string, BuiltinsMemo>({ max: MEMO_SIZE, ttl: BUILTINS_TTL_MS });
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
    // Without relations, and with the database's functions known (or none to check), there is nothing to ask: decide at once.
    const calls = c.cacheable && c.reads.length === 0 ? this.#functionsNow(database, c.functions) : undefined;
    if (c.cacheable && calls === undefined) {
      void this.plan(database, user, sql);
      return undefined;
    }
    const now = calls?.problem === undefined ? this.#decide(c, []) : no(calls.problem);
    this.#plans.set(key, now);
    return now;
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

  /**
   * A session of `database` has begun: its functions are loaded now if they are not known, so the
   * session's first statement with a call rarely waits for them.
   */
  warm(database: string, user: string): void {
    if (this.#catalog !== undefined && this.#builtins.get(database) === undefined) this.#loadBuiltins(database, user);
  }

  /** After DDL the catalog's answers may have changed: plans of that database are worked out again. */
  forgetPlans(database: string): void {
    const prefix = `${database}\u0000`;
    for (const key of this.#plans.keys()) if (key.startsWith(prefix)) this.#plans.delete(key);
    for (const key of this.#facts.keys()) if (key.startsWith(prefix)) this.#facts.delete(key);
    for (const key of this.#calls.keys()) if (key.startsWith(prefix)) this.#calls.delete(key);
  }

  /** Tags a write to `names` must invalidate: the names, and what the catalog expands them to. */
  async writeTags(database: string, user: string, names: readonly string[]): Promise<string[]> {
    const tags = new Set(names.map(tableTag));
    if (this.#catalog !== undefined && names.length > 0) {
      // The same memo as reads: a busy writer does not ask the catalog on every statement.
      const facts = await this.#relationFacts(
        database,
        user,
        names.map((name) => ({ schema: undefined, name })),
      );
      for (const n of facts.names) tags.add(tableTag(n));
    }
    return [...tags];
  }

  async #resolve(database: string, user: string, c: Classification): Promise<CachePlan> {
    if (!c.cacheable) return no(c.reason ?? 'not cacheable');
    const calls = c.functions.filter((f) => !this.#isAllowed(f));
    if ((c.reads.length > 0 || calls.length > 0) && this.#catalog === undefined) return no('the catalog is off: relations and functions cannot be checked');
    if (calls.length > 0) {
      const problem = await this.#functionProblem(database, user, calls);
      if (problem !== undefined) return no(problem);
    }
    let names: string[] = [];
    if (c.reads.length > 0) {
      const facts = await this.#relationFacts(database, user, c.reads);
      if (facts.problem !== undefined) return no(facts.problem);
      names = facts.names;
    }
    return this.#decide(c, names);
  }

  /**
   * The catalog's answer for a set of relations, shared by every SQL text that names the same
   * ones (statements that differ only in constants ask once).
   */
  #relationFacts(database: string, user: string, relations: readonly RelationRef[]): Promise<RelationFacts> {
    const key = `${database}\u0000${relations
      .map((r) => `${r.schema ?? ''}.${r.name}`)
      .sort()
      .join(',')}`;
    let facts: Promise<RelationFacts> | undefined = this.#facts.get(key);
    if (facts === undefined) {
      facts = this.#catalog!.relations(database, user, relations).catch((err: unknown) => {
        // Remembered briefly, so a catalog outage does not cost every new statement a timeout.
        this.#facts.set(key, facts!, { ttl: CATALOG_RETRY_MS });
        return { names: [], problem: unreachable(err) };
      });
      this.#facts.set(key, facts);
    }
    return facts;
  }

  /** Why `calls` (none on the allow list) keep a statement from the cache, or undefined when all are IMMUTABLE. */
  async #functionProblem(database: string, user: string, calls: readonly string[]): Promise<string | undefined> {
    let builtins: BuiltinFunctions;
    try {
      builtins = await (this.#builtins.get(database) ?? this.#loadBuiltins(database, user)).loading;
    } catch (err) {
      return unreachable(err);
    }
    const { volatile, unknown } = builtins.sort(calls);
    if (volatile.length > 0) return volatilityProblem(volatile);
    return unknown.length === 0 ? undefined : this.#askCalls(database, user, unknown);
  }

  #loadBuiltins(database: string, user: string): BuiltinsMemo {
    const memo: BuiltinsMemo = { loading: this.#catalog!.builtins(database, user), loaded: undefined };
    this.#builtins.set(database, memo);
    memo.loading.then(
      (builtins) => {
        memo.loaded = builtins;
      },
      () => {
        // Remembered briefly, like a relation question that failed.
        if (this.#builtins.peek(database) === memo) this.#builtins.set(database, memo, { ttl: CATALOG_RETRY_MS });
      },
    );
    return memo;
  }

  /** The catalog's answer for calls of user functions (or others the built-ins do not know), shared by every SQL text that makes them. */
  #askCalls(database: string, user: string, calls: readonly string[]): Promise<string | undefined> {
    const key = `${database}\u0000${[...calls].sort().join(',')}`;
    let answer = this.#calls.get(key);
    if (answer === undefined) {
      answer = this.#catalog!.volatileFunctions(database, user, calls).then(volatilityProblem, (err: unknown) => {
        this.#calls.set(key, answer!, { ttl: CATALOG_RETRY_MS });
        return unreachable(err);
      });
      this.#calls.set(key, answer);
    }
    return answer;
  }

  /** The answer for `functions` without waiting: undefined when the catalog must be asked (or has not answered yet). */
  #functionsNow(database: string, functions: readonly string[]): { problem: string | undefined } | undefined {
    const calls = functions.filter((f) => !this.#isAllowed(f));
    if (calls.length === 0) return { problem: undefined };
    const verdicts = this.#builtins.get(database)?.loaded?.sort(calls);
    if (verdicts === undefined) return undefined;
    if (verdicts.volatile.length > 0) return { problem: volatilityProblem(verdicts.volatile) };
    return verdicts.unknown.length === 0 ? { problem: undefined } : undefined;
  }

  /** The allow list names functions without argument counts (`slugify`, `app.slugify`). */
  #isAllowed(call: string): boolean {
    const name = call.split('/')[0]!.toLowerCase();
    return this.#allowed.has(name) || this.#allowed.has(name.split('.').at(-1)!);
  }

  /** Applies the listener's rules (first match by table) to a statement that may be cached. */
  #decide(c: Classification, names: string[]): CachePlan {
    if (!c.cacheable) return no(c.reason ?? 'not cacheable');
    const rule = this.#config.rules.find((r) => r.tables.some((t) => names.includes(t.toLowerCase())));
    if (rule !== undefined && !rule.cache) return no(`rule for ${rule.tables.join(', ')} says cache: false`);
    return { cacheable: true, reason: undefined, tags: names.map(tableTag), ttlMs: rule?.ttl ?? this.#config.defaultTtl };
  }
}

/** Why calls that are not IMMUTABLE keep a statement from the cache; undefined for none. */
function volatilityProblem(volatile: readonly string[]): string | undefined {
  return volatile.length === 0 ? undefined : `calls ${volatile.map((v) => v.split('/')[0]).join(', ')}, which is not IMMUTABLE`;
}

function unreachable(err: unknown): string {
  return `the catalog could not be asked (${(err as Error).message})`;
}
