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
import { parsePgUrl } from '../../config/pg-url.js';
import { clusterTag, databaseTag, tableTag } from '../../cache/tags.js';
import type { InvalidationTarget } from '../../cache/types.js';
import type { Catalog, RelationFacts, UserObjects, WriteReach } from './catalog.js';
import { type Classification, classify, type RelationRef } from './classify.js';
import type { BuiltinFunctions } from './volatility.js';

export interface CachePlan {
  cacheable: boolean;
  reason: string | undefined;
  /** `table:<name>` for every relation read, views and partitions resolved, and the server's cluster tag. */
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
/** How many further catalog questions a statement's views may need (relations their definitions name that pg_depend did not list). */
const MAX_VIEW_ROUNDS = 8;

/** One database's answer, loading or loaded (then `loaded` is set, for answers without waiting). */
interface Memo<T> {
  readonly loading: Promise<T>;
  loaded: T | undefined;
}

/** What the function, operator and attribute checks of one statement found. */
type CallCheck = { problem: string | undefined; unknown: string[] };

const no = (reason: string): CachePlan => ({ cacheable: false, reason, tags: [], ttlMs: 0 });

export class Planner {
  readonly #classes = new LRUCache<string, Classification>({ max: MEMO_SIZE });
  readonly #plans: LRUCache<string, CachePlan>;
  readonly #pending = new Map<string, Promise<CachePlan>>();
  readonly #facts = new LRUCache<string, Promise<RelationFacts>>({ max: MEMO_SIZE, ttl: PLAN_TTL_MS });
  /** The tags of each answered relation question, so an invalidation of a table drops only the answers that reach it. */
  readonly #factTags = new WeakMap<Promise<RelationFacts>, ReadonlySet<string>>();
  /** Per set of calls the built-ins do not answer: the catalog's reason they are not all IMMUTABLE, if any. */
  readonly #calls = new LRUCache<string, Promise<string | undefined>>({ max: MEMO_SIZE, ttl: PLAN_TTL_MS });
  /**
   * Per database, every built-in function in one query (some 3,000 rows) rather than a question
   * per new name: calls of built-ins, most calls, are then checked without a round trip, so a
   * SQL text's first use rarely waits for its plan and later ones never do.
   */
  readonly #builtins = new LRUCache<string, Memo<BuiltinFunctions>>({ max: MEMO_SIZE, ttl: BUILTINS_TTL_MS });
  /** Per database, the functions and operators of other schemas (an overload of a built-in's name counts): DDL drops them. */
  readonly #users = new LRUCache<string, Memo<UserObjects>>({ max: MEMO_SIZE, ttl: PLAN_TTL_MS });
  /** Per database and set of written names: what a write reaches (only answers, so a write applies it at once). */
  readonly #reach = new LRUCache<string, WriteReach>({ max: MEMO_SIZE, ttl: PLAN_TTL_MS });
  /** Per database, writes whose reach the catalog has not answered yet: plans of that database wait for them. */
  readonly #unresolved = new Map<string, Set<Promise<void>>>();
  /** Bumped when memos are dropped, so a plan worked out from older answers is not remembered. */
  #epoch = 0;
  readonly #catalog: Catalog | undefined;
  readonly #config: PostgresListenerConfig;
  readonly #allowed: ReadonlySet<string>;
  /** Carried by every entry of this server's databases, for statements that reach all of them (roles, databases). */
  readonly clusterTag: string;

  constructor(config: PostgresListenerConfig, catalog: Catalog | undefined) {
    this.#config = config;
    this.#catalog = catalog;
    this.#allowed = new Set((config.functions ?? []).map((f) => f.toLowerCase()));
    this.#plans = new LRUCache<string, CachePlan>({ max: MEMO_SIZE, ttl: PLAN_TTL_MS });
    const upstream = parsePgUrl(config.upstream);
    this.clusterTag = clusterTag(`${upstream.host ?? ''}:${upstream.port ?? 5432}`);
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
    // A write's reach is being resolved: reads wait for it (or go upstream uncached), never older entries.
    if (this.#unresolved.has(database)) return undefined;
    const key = `${database}\u0000${sql}`;
    const plan = this.#plans.get(key);
    if (plan !== undefined) return plan;
    const c = this.classify(sql);
    // Without relations, and with the database's functions known (or none to check), there is nothing to ask: decide at once.
    const calls = c.cacheable && c.reads.length === 0 ? this.#checkNow(database, c, new Set()) : undefined;
    if (c.cacheable && (calls === undefined || (calls.problem === undefined && calls.unknown.length > 0))) {
      void this.plan(database, user, sql);
      return undefined;
    }
    const now = calls?.problem === undefined ? this.#decide(c, []) : no(calls.problem);
    this.#plans.set(key, now);
    return now;
  }

  /** Works out the plan (asking the catalog when needed). Never rejects. */
  plan(database: string, user: string, sql: string): Promise<CachePlan> {
    const writes = this.#unresolved.get(database);
    if (writes !== undefined) return Promise.all(writes).then(() => this.plan(database, user, sql));
    const key = `${database}\u0000${sql}`;
    const known = this.#plans.get(key);
    if (known !== undefined) return Promise.resolve(known);
    let pending = this.#pending.get(key);
    if (pending === undefined) {
      const epoch = this.#epoch;
      pending = this.#resolve(database, user, this.classify(sql)).then((plan) => {
        if (epoch === this.#epoch) this.#plans.set(key, plan);
        this.#pending.delete(key);
        return plan;
      });
      this.#pending.set(key, pending);
    }
    return pending;
  }

  /**
   * The plan for /cache/explain: the one sessions use when known, else worked out without being
   * remembered, so a question (perhaps asked as another user) never changes what sessions cache.
   */
  explain(database: string, user: string, sql: string): Promise<CachePlan> {
    return Promise.resolve(this.#plans.get(`${database}\u0000${sql}`) ?? this.#resolve(database, user, this.classify(sql)));
  }

  /**
   * A session of `database` has begun: its functions are loaded now if they are not known, so the
   * session's first statement with a call rarely waits for them.
   */
  warm(database: string, user: string): void {
    if (this.#catalog === undefined) return;
    const builtins = this.#builtins.get(database) === undefined;
    const users = this.#users.get(database) === undefined;
    if (builtins && users) {
      const both = this.#catalog.functions(database, user);
      this.#load(
        this.#builtins,
        database,
        both.then((b) => b.builtins),
      );
      this.#load(
        this.#users,
        database,
        both.then((b) => b.users),
      );
    } else if (builtins) this.#loadBuiltins(database, user);
    else if (users) this.#loadUsers(database, user);
  }

  /** After DDL the catalog's answers may have changed: plans of that database are worked out again. */
  forgetPlans(database: string): void {
    this.#epoch++;
    const prefix = `${database}\u0000`;
    for (const memo of [this.#plans, this.#facts, this.#calls, this.#reach] as LRUCache<string, object>[]) {
      for (const key of memo.keys()) if (key.startsWith(prefix)) memo.delete(key);
    }
    this.#users.delete(database);
  }

  /** Every answer is asked again (after statements that may change any database of the server). */
  forgetAll(): void {
    this.#epoch++;
    for (const memo of [this.#plans, this.#facts, this.#calls, this.#reach, this.#users] as LRUCache<string, object>[]) memo.clear();
  }

  /**
   * An invalidation from elsewhere (a bus, the admin API, another listener) may follow DDL
   * sidecache did not see: plans that carry one of its tags are worked out again, with fresh
   * catalog answers about those tables (answers about others, and about functions, stand). `all`, or a database's or server's tag, drops every plan; HTTP targets
   * (keys, prefixes, URL and user tags) say nothing about the catalog.
   */
  forget(target: { readonly tags?: readonly string[]; readonly all?: boolean }): void {
    const all = [...(target.tags ?? [])];
    if (target.all === true || all.some((t) => t.startsWith(databaseTag('')) || t.startsWith(clusterTag('')))) return this.forgetAll();
    const tags = new Set(all.filter((t) => t.startsWith(tableTag(''))));
    if (tags.size === 0) return;
    this.#epoch++;
    const reaches = (names: Iterable<string> | undefined): boolean => names === undefined || [...names].some((n) => tags.has(n));
    for (const [key, plan] of this.#plans.entries()) if (reaches(plan.tags)) this.#plans.delete(key);
    for (const [key, facts] of this.#facts.entries()) if (reaches(this.#factTags.get(facts))) this.#facts.delete(key);
    for (const [key, reach] of this.#reach.entries()) if (reaches(reach.names.map(tableTag))) this.#reach.delete(key);
  }

  /**
   * Whether running `c` may write through what it calls: a function, an attribute-notation call
   * or an operator outside pg_catalog that is not IMMUTABLE, or a call neither the built-ins nor
   * the other schemas' functions list (created since, or not loaded yet). Sidecache cannot see
   * what such a function writes: the caller invalidates the database. Answered without waiting;
   * a statement whose plan says it may be cached calls nothing of the kind.
   */
  mayWrite(database: string, sql: string, c: Classification): boolean {
    if (this.#plans.get(`${database}\u0000${sql}`)?.cacheable === true) return false;
    const calls = c.functions.filter((f) => !this.#isAllowed(f));
    if (calls.length === 0 && c.operators.length === 0 && c.attributes.length === 0) return false;
    const builtins = this.#builtins.get(database)?.loaded;
    const users = this.#users.get(database)?.loaded;
    if (builtins === undefined || users === undefined) return calls.length > 0;
    if (c.operators.some((o) => !o.startsWith('pg_catalog.') && users.volatileOperators.has(o.split('.').at(-1)!))) return true;
    if (users.functions.sort(c.attributes.map((a) => `${a}/1`)).volatile.length > 0) return true;
    const fromUsers = users.functions.sort(calls);
    return fromUsers.volatile.length > 0 || builtins.sort(fromUsers.unknown).unknown.length > 0;
  }

  /**
   * Invalidates what a write to `refs` reaches: the written names at once, and what the catalog
   * expands them to (partitions and parents, views, cascading foreign keys) at once when that
   * answer is known, else when it lands; until then plans of the database wait for it, so the
   * next read of the writing session cannot be answered from an entry the write made stale.
   * A table with triggers or rules, or a catalog that cannot be asked, invalidates the database,
   * and calls `unknownCode`: the write ran code the statement does not show (a trigger may call
   * set_config), so the writing session can no longer be modelled.
   */
  afterWrite(
    database: string,
    user: string,
    refs: readonly RelationRef[],
    cascade: boolean,
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
    let set = this.#unresolved.get(database);
    if (set === undefined) this.#unresolved.set(database, (set = new Set()));
    set.add(resolving);
    void resolving.finally(() => {
      set.delete(resolving);
      if (set.size === 0 && this.#unresolved.get(database) === set) this.#unresolved.delete(database);
    });
  }

  async #resolve(database: string, user: string, c: Classification): Promise<CachePlan> {
    if (!c.cacheable) return no(c.reason ?? 'not cacheable');
    const toCheck = c.functions.some((f) => !this.#isAllowed(f)) || c.operators.length > 0 || c.types.length > 0 || c.attributes.length > 0;
    if ((c.reads.length > 0 || toCheck) && this.#catalog === undefined) return no('the catalog is off: relations and functions cannot be checked');
    const facts = await this.#relationFacts(database, user, c.reads);
    if (facts.problem !== undefined) return no(facts.problem);
    const names = new Set(facts.names);
    const columns = new Set(facts.columns);
    const checks: { prefix: string; c: Classification }[] = [{ prefix: '', c }];
    // Views are classified like the statement: built-ins they call are not in pg_depend.
    const views = [...facts.views];
    const seen = new Set<string>();
    let asked = 0;
    while (views.length > 0) {
      const view = views.shift()!;
      if (seen.has(view.name)) continue;
      seen.add(view.name);
      const vc = this.classify(view.definition);
      if (!vc.cacheable) return no(`the view ${view.name} is not cacheable: ${vc.reason ?? 'not cacheable'}`);
      checks.push({ prefix: `the view ${view.name} `, c: vc });
      const unseen = vc.reads.filter((r) => !names.has(r.name));
      if (unseen.length === 0) continue;
      if (++asked > MAX_VIEW_ROUNDS) return no(`the view ${view.name} reads relations beyond ${MAX_VIEW_ROUNDS} further catalog questions`);
      const more = await this.#relationFacts(database, user, unseen);
      if (more.problem !== undefined) return no(`the view ${view.name} ${more.problem}`);
      for (const n of more.names) names.add(n);
      for (const col of more.columns) columns.add(col);
      views.push(...more.views);
    }
    for (const check of checks) {
      const problem = await this.#callProblem(database, user, check.c, columns);
      if (problem !== undefined) return no(check.prefix + problem);
    }
    return this.#decide(c, [...names]);
  }

  /**
   * The catalog's answer for a set of relations, shared by every SQL text that names the same
   * ones (statements that differ only in constants ask once).
   */
  #relationFacts(database: string, user: string, relations: readonly RelationRef[]): Promise<RelationFacts> {
    if (relations.length === 0) return Promise.resolve({ names: [], problem: undefined, views: [], columns: [] });
    const key = `${database}\u0000${relations
      .map((r) => `${r.schema ?? ''}.${r.name}`)
      .sort()
      .join(',')}`;
    let facts: Promise<RelationFacts> | undefined = this.#facts.get(key);
    if (facts === undefined) {
      const asked: Promise<RelationFacts> = this.#catalog!.relations(database, user, relations).catch((err: unknown) => {
        // Remembered briefly, so a catalog outage does not cost every new statement a timeout.
        this.#facts.set(key, asked, { ttl: CATALOG_RETRY_MS });
        return { names: [], problem: unreachable(err), views: [], columns: [] };
      });
      this.#facts.set(key, asked);
      void asked.then((answer) => this.#factTags.set(asked, new Set(answer.names.map(tableTag))));
      facts = asked;
    }
    return facts;
  }

  /** Why the calls, operators and attribute names of `c` keep it from the cache, or undefined when all are IMMUTABLE. */
  async #callProblem(database: string, user: string, c: Classification, columns: ReadonlySet<string>): Promise<string | undefined> {
    if (!this.#needsCheck(c, columns)) return undefined;
    let found: CallCheck;
    try {
      const builtins = await (this.#builtins.get(database) ?? this.#loadBuiltins(database, user)).loading;
      const users = await (this.#users.get(database) ?? this.#loadUsers(database, user)).loading;
      found = check(c, columns, builtins, users, (call) => this.#isAllowed(call));
    } catch (err) {
      return unreachable(err);
    }
    if (found.problem !== undefined) return found.problem;
    return found.unknown.length === 0 ? undefined : this.#askCalls(database, user, found.unknown);
  }

  #needsCheck(c: Classification, columns: ReadonlySet<string>): boolean {
    return c.functions.some((f) => !this.#isAllowed(f)) || c.operators.length > 0 || c.types.length > 0 || c.attributes.some((a) => !columns.has(a));
  }

  #loadBuiltins(database: string, user: string): Memo<BuiltinFunctions> {
    return this.#load(this.#builtins, database, this.#catalog!.builtins(database, user));
  }

  #loadUsers(database: string, user: string): Memo<UserObjects> {
    return this.#load(this.#users, database, this.#catalog!.userObjects(database, user));
  }

  #load<T>(memos: LRUCache<string, Memo<T>>, database: string, loading: Promise<T>): Memo<T> {
    const memo: Memo<T> = { loading, loaded: undefined };
    memos.set(database, memo);
    memo.loading.then(
      (value) => {
        memo.loaded = value;
      },
      () => {
        // Remembered briefly, like a relation question that failed.
        if (memos.peek(database) === memo) memos.set(database, memo, { ttl: CATALOG_RETRY_MS });
      },
    );
    return memo;
  }

  /** The catalog's answer for calls of user functions (or others the built-ins do not know), shared by every SQL text that makes them. */
  #askCalls(database: string, user: string, calls: readonly string[]): Promise<string | undefined> {
    const key = `${database}\u0000${[...calls].sort().join(',')}`;
    let answer = this.#calls.get(key);
    if (answer === undefined) {
      const asked: Promise<string | undefined> = this.#catalog!.volatileFunctions(database, user, calls).then(volatilityProblem, (err: unknown) => {
        this.#calls.set(key, asked, { ttl: CATALOG_RETRY_MS });
        return unreachable(err);
      });
      this.#calls.set(key, asked);
      answer = asked;
    }
    return answer;
  }

  /** The check of `c` without waiting: undefined when what the catalog knows of the database has not been loaded yet. */
  #checkNow(database: string, c: Classification, columns: ReadonlySet<string>): CallCheck | undefined {
    if (!this.#needsCheck(c, columns)) return { problem: undefined, unknown: [] };
    if (this.#catalog === undefined) return { problem: 'the catalog is off: relations and functions cannot be checked', unknown: [] };
    const builtins = this.#builtins.get(database)?.loaded;
    const users = this.#users.get(database)?.loaded;
    if (builtins === undefined || users === undefined) return undefined;
    return check(c, columns, builtins, users, (call) => this.#isAllowed(call));
  }

  /** The allow list names functions without argument counts (`slugify`, `app.slugify`). */
  #isAllowed(call: string): boolean {
    const name = call.split('/')[0]!.toLowerCase();
    return this.#allowed.has(name) || this.#allowed.has(name.split('.').at(-1)!);
  }

  /** Applies the listener's rules (first match by table, names compared as tags are: without schema or case) to a statement that may be cached. */
  #decide(c: Classification, names: string[]): CachePlan {
    if (!c.cacheable) return no(c.reason ?? 'not cacheable');
    const tags = names.map(tableTag);
    const rule = this.#config.rules.find((r) => r.tables.some((t) => tags.includes(tableTag(t))));
    if (rule !== undefined && !rule.cache) return no(`rule for ${rule.tables.join(', ')} says cache: false`);
    return { cacheable: true, reason: undefined, tags: [...tags, this.clusterTag], ttlMs: rule?.ttl ?? this.#config.defaultTtl };
  }
}

/**
 * Checks what `c` runs against one database's functions and operators: a user operator of a name
 * used that is not IMMUTABLE, a name read as `x.name` that is no column and names a function of
 * one argument that is not IMMUTABLE, a call any overload of which (built-in or in any schema) is
 * not IMMUTABLE. Calls neither list knows are left for the catalog.
 */
function check(c: Classification, columns: ReadonlySet<string>, builtins: BuiltinFunctions, users: UserObjects, allowed: (call: string) => boolean): CallCheck {
  const operator = c.operators.find((o) => !o.startsWith('pg_catalog.') && users.volatileOperators.has(o.split('.').at(-1)!));
  if (operator !== undefined) return { problem: `uses the operator ${operator.split('.').at(-1)}, which is not IMMUTABLE`, unknown: [] };
  const type = c.types.find((t) => users.volatileTypes.has(t));
  if (type !== undefined) return { problem: `casts to ${type}, whose input or cast is not IMMUTABLE`, unknown: [] };
  const attributes = c.attributes.filter((a) => !columns.has(a) && !allowed(`${a}/1`)).map((a) => `${a}/1`);
  const attribute = attributes.find((a) => builtins.sort([a]).volatile.length > 0 || users.functions.sort([a]).volatile.length > 0);
  if (attribute !== undefined) return { problem: volatilityProblem([attribute]), unknown: [] };
  const calls = c.functions.filter((f) => !allowed(f));
  const fromBuiltins = builtins.sort(calls);
  const fromUsers = users.functions.sort(calls);
  const volatile = [...new Set([...fromBuiltins.volatile, ...fromUsers.volatile])];
  if (volatile.length > 0) return { problem: volatilityProblem(volatile), unknown: [] };
  return { problem: undefined, unknown: fromBuiltins.unknown.filter((u) => fromUsers.unknown.includes(u)) };
}

/** Why calls that are not IMMUTABLE keep a statement from the cache; undefined for none. */
function volatilityProblem(volatile: readonly string[]): string | undefined {
  return volatile.length === 0 ? undefined : `calls ${volatile.map((v) => v.split('/')[0]!.split('.').at(-1)).join(', ')}, which is not IMMUTABLE`;
}

function unreachable(err: unknown): string {
  return `the catalog could not be asked (${(err as Error).message})`;
}
