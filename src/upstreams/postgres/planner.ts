/**
 * Per SQL text, once: the parser's classification (memoized forever, it is pure) and the cache
 * plan that adds the catalog's answers and the listener's rules (memoized a short while, as the
 * schema can change under it). The catalog's answers about relations are remembered too, per set of
 * names; calls are checked in call-checks.ts, what writes reach is in write-reach.ts. A hit never
 * parses: it only reads these memos.
 */
import { LRUCache } from 'lru-cache';
import type { PostgresListenerConfig } from '../../config/schema.js';
import { parsePgUrl } from '../../config/pg-url.js';
import { clusterTag, databaseTag, tableTag } from '../../cache/tags.js';
import { CallChecks } from './call-checks.js';
import type { Catalog, RelationFacts } from './catalog.js';
import { VIEW_REASON } from './classification.js';
import { type Classification, classify, type RelationRef } from './classify.js';
import { CATALOG_RETRY_MS, MEMO_SIZE, PLAN_TTL_MS, unreachable, MEMO_TTL_RESOLUTION_MS } from './plan-memo.js';
import { sqlShape } from './sql-shape.js';
import { WriteReaches } from './write-reach.js';
import { type CachePlan, decidePlan, isSharedByShape, no } from './cache-plan.js';

/** How many further catalog questions a statement's views may need (relations their definitions name that pg_depend did not list). */
const MAX_VIEW_ROUNDS = 8;

export class Planner {
  /** Classifications by SQL text, of texts whose shape does not stand for them. */
  readonly #classes = new LRUCache<string, Classification>({ max: MEMO_SIZE });
  /** Cacheable classifications by shape (sql-shape.ts): texts that differ only in constants are parsed once. */
  readonly #shapes = new LRUCache<string, Classification>({ max: MEMO_SIZE });
  /** The last text asked about and its memo key: a statement is asked about several times in a row. */
  #lastSql = '';
  #lastKey = 't';
  readonly #plans: LRUCache<string, CachePlan>;
  readonly #pending = new Map<string, Promise<CachePlan>>();
  readonly #facts = new LRUCache<string, Promise<RelationFacts>>({ max: MEMO_SIZE, ttl: PLAN_TTL_MS, ttlResolution: MEMO_TTL_RESOLUTION_MS });
  /** The tags of each answered relation question, so an invalidation of a table drops only the answers that reach it. */
  readonly #factTags = new WeakMap<Promise<RelationFacts>, ReadonlySet<string>>();
  /** Bumped when memos are dropped, so a plan worked out from older answers is not remembered. */
  #epoch = 0;
  readonly #catalog: Catalog | undefined;
  readonly #config: PostgresListenerConfig;
  readonly #calls: CallChecks;
  /** What writes reach: `planner.writes.afterWrite(…)` invalidates it, and plans of the database wait while it is asked. */
  readonly writes: WriteReaches;
  /** Carried by every entry of this server's databases, for statements that reach all of them (roles, databases). */
  readonly clusterTag: string;

  /** A user of each database whose statements were planned: whom bus-reach.ts asks what a bus message's tables reach. */
  readonly databases: Map<string, string>;

  constructor(config: PostgresListenerConfig, catalog: Catalog | undefined, databases = new Map<string, string>()) {
    this.databases = databases;
    this.#config = config;
    this.#catalog = catalog;
    this.#calls = new CallChecks(catalog, config.functions ?? []);
    this.writes = new WriteReaches(catalog);
    this.#plans = new LRUCache<string, CachePlan>({ max: MEMO_SIZE, ttl: PLAN_TTL_MS, ttlResolution: MEMO_TTL_RESOLUTION_MS });
    const upstream = parsePgUrl(config.upstream);
    this.clusterTag = clusterTag(`${upstream.host ?? ''}:${upstream.port ?? 5432}`);
  }

  classify(sql: string): Classification {
    const shape = this.#shapeOf(sql);
    if (shape !== undefined) {
      const known = this.#shapes.get(shape);
      if (known !== undefined) return known;
    }
    let c = this.#classes.get(sql);
    if (c === undefined) {
      c = classify(sql);
      if (shape !== undefined && isSharedByShape(c)) this.#shapes.set(shape, c);
      else this.#classes.set(sql, c);
    }
    return c;
  }

  /** The shape of `sql` (memoized for the last text), undefined when it has none. */
  #shapeOf(sql: string): string | undefined {
    if (sql !== this.#lastSql) {
      const shape = sqlShape(sql);
      this.#lastSql = sql;
      this.#lastKey = shape === undefined ? 't' : `s${shape}`;
    }
    return this.#lastKey === 't' ? undefined : this.#lastKey.slice(1);
  }

  /**
   * The key of `sql`'s plan in `database`: by shape when the shape's classification is the
   * text's, else by text (prefixes keep the two apart).
   */
  #planKey(database: string, sql: string): string {
    const c = this.classify(sql);
    const shape = this.#shapeOf(sql);
    return shape !== undefined && this.#shapes.get(shape) === c ? `${database}\u0000s${shape}` : `${database}\u0000t${sql}`;
  }

  /** The plan if it is known; otherwise undefined, and it is worked out in the background. */
  peek(database: string, user: string, sql: string): CachePlan | undefined {
    if (!this.databases.has(database)) this.databases.set(database, user);
    // A write's reach is being resolved: reads wait for it (or go upstream uncached), never older entries.
    if (this.writes.pending(database) !== undefined) return undefined;
    const key = this.#planKey(database, sql);
    const plan = this.#plans.get(key);
    if (plan !== undefined) return plan;
    const c = this.classify(sql);
    // Without relations, and with the database's functions known (or none to check), there is nothing to ask: decide at once.
    const calls = c.cacheable && c.reads.length === 0 ? this.#calls.checkNow(database, c, new Set()) : undefined;
    if (c.cacheable && (calls === undefined || (calls.problem === undefined && calls.unknown.length > 0))) {
      void this.plan(database, user, sql);
      return undefined;
    }
    const now = calls?.problem === undefined ? decidePlan(this.#config, this.clusterTag, c, []) : no(calls.problem);
    this.#plans.set(key, now);
    return now;
  }

  /** Works out the plan (asking the catalog when needed). Never rejects. */
  plan(database: string, user: string, sql: string): Promise<CachePlan> {
    const writes = this.writes.pending(database);
    if (writes !== undefined) return Promise.all([...writes]).then(() => this.plan(database, user, sql));
    return this.#planned(database, user, sql);
  }

  /** The plan, from the memo or worked out, without waiting for writes being resolved (their reach does not change it). */
  #planned(database: string, user: string, sql: string): Promise<CachePlan> {
    const key = this.#planKey(database, sql);
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
    return Promise.resolve(this.#plans.get(this.#planKey(database, sql)) ?? this.#resolve(database, user, this.classify(sql)));
  }

  /**
   * A session of `database` has begun: its functions are loaded now if they are not known, so the
   * session's first statement with a call rarely waits for them.
   */
  warm(database: string, user: string): void {
    this.#calls.warm(database, user);
  }

  /** Ends sidecache's own catalog connections to `database` (before a DROP DATABASE is forwarded). */
  releaseDatabase(database: string): Promise<void> {
    return this.#catalog?.closeDatabase(database) ?? Promise.resolve();
  }

  /** See CallChecks.mayBeUserFunction. */
  mayBeUserFunction(database: string, user: string, calls: readonly string[]): boolean | Promise<boolean> {
    return this.#calls.mayBeUserFunction(database, user, calls);
  }

  /** After DDL the catalog's answers may have changed: plans of that database are worked out again. */
  forgetPlans(database: string): void {
    this.#epoch++;
    const prefix = `${database}\u0000`;
    for (const memo of [this.#plans, this.#facts] as LRUCache<string, object>[]) {
      for (const key of memo.keys()) if (key.startsWith(prefix)) memo.delete(key);
    }
    this.#calls.forgetDatabase(database);
    this.writes.forgetDatabase(database);
  }

  /** Every answer is asked again (after statements that may change any database of the server). */
  forgetAll(): void {
    this.#epoch++;
    for (const memo of [this.#plans, this.#facts] as LRUCache<string, object>[]) memo.clear();
    this.#calls.forgetAll();
    this.writes.forgetAll();
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
    this.writes.forgetTags(tags);
  }

  /**
   * Whether running `c` may write through what it calls: a function, an attribute-notation call
   * or an operator outside pg_catalog that is not IMMUTABLE, or a call neither the built-ins nor
   * the other schemas' functions list (created since, or not loaded yet). Sidecache cannot see
   * what such a function writes: the caller invalidates the database. Answered without waiting;
   * a statement whose plan says it may be cached calls nothing of the kind.
   */
  mayWrite(database: string, sql: string, c: Classification): boolean {
    if (this.#plans.get(this.#planKey(database, sql))?.cacheable === true) return false;
    return this.#calls.mayWrite(database, c);
  }

  /**
   * Whether the planner refused `sql` for what a view it reads runs: code its text does not show
   * (set_config, writes). A promise while the plan is being worked out.
   */
  refusedForViewCode(database: string, user: string, sql: string): boolean | Promise<boolean> {
    const refused = (plan: CachePlan): boolean => plan.reason?.startsWith(VIEW_REASON) === true;
    const plan = this.peek(database, user, sql);
    // Not `plan`: it waits for writes being resolved, and a write's verdict may wait for this one.
    return plan === undefined ? this.#planned(database, user, sql).then(refused) : refused(plan);
  }

  async #resolve(database: string, user: string, c: Classification): Promise<CachePlan> {
    if (!c.cacheable) return no(c.reason ?? 'not cacheable');
    const toCheck = c.functions.some((f) => !this.#calls.isAllowed(f)) || c.operators.length > 0 || c.types.length > 0 || c.attributes.length > 0;
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
      if (!vc.cacheable) return no(`${VIEW_REASON}${view.name} is not cacheable: ${vc.reason ?? 'not cacheable'}`);
      checks.push({ prefix: `${VIEW_REASON}${view.name} `, c: vc });
      const unseen = vc.reads.filter((r) => !names.has(r.name));
      if (unseen.length === 0) continue;
      if (++asked > MAX_VIEW_ROUNDS) return no(`${VIEW_REASON}${view.name} reads relations beyond ${MAX_VIEW_ROUNDS} further catalog questions`);
      const more = await this.#relationFacts(database, user, unseen);
      if (more.problem !== undefined) return no(`${VIEW_REASON}${view.name} ${more.problem}`);
      for (const n of more.names) names.add(n);
      for (const col of more.columns) columns.add(col);
      views.push(...more.views);
    }
    for (const check of checks) {
      const problem = await this.#calls.problem(database, user, check.c, columns);
      if (problem !== undefined) return no(check.prefix + problem);
    }
    return decidePlan(this.#config, this.clusterTag, c, [...names]);
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
}
