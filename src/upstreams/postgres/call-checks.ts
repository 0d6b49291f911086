/**
 * Whether what a statement runs besides reading is IMMUTABLE: its calls, operators, casts and
 * attribute names, checked against one database's built-in and user functions (loaded once per
 * database and remembered) and, for calls neither knows, asked of the catalog.
 */
import { LRUCache } from 'lru-cache';
import type { Millis } from '../../units.js';
import type { Catalog, CallsVolatility, UserObjects } from './catalog.js';
import type { Classification } from './classify.js';
import { CATALOG_RETRY_MS, MEMO_SIZE, PLAN_TTL_MS, unreachable, MEMO_TTL_RESOLUTION_MS } from './plan-memo.js';
import type { BuiltinFunctions } from './volatility.js';

/**
 * How long a database's built-in functions are trusted. They change only with the server's
 * version (DDL cannot make a built-in volatile; a function an extension adds later is unknown to
 * them and asked about on its own), so DDL does not drop them; the hour bounds an upgrade in place.
 */
const BUILTINS_TTL_MS: Millis = 3_600_000;

/** One database's answer, loading or loaded (then `loaded` is set, for answers without waiting). */
interface Memo<T> {
  readonly loading: Promise<T>;
  loaded: T | undefined;
}

/** What the function, operator and attribute checks of one statement found. */
export type CallCheck = { problem: string | undefined; unknown: string[] };

export class CallChecks {
  /** Per set of calls the built-ins do not answer: the catalog's reason they are not all IMMUTABLE, if any. */
  readonly #calls = new LRUCache<string, Promise<string | undefined>>({ max: MEMO_SIZE, ttl: PLAN_TTL_MS, ttlResolution: MEMO_TTL_RESOLUTION_MS });
  /**
   * Per database, every built-in function in one query (some 3,000 rows) rather than a question
   * per new name: calls of built-ins, most calls, are then checked without a round trip, so a
   * SQL text's first use rarely waits for its plan and later ones never do.
   */
  readonly #builtins = new LRUCache<string, Memo<BuiltinFunctions>>({ max: MEMO_SIZE, ttl: BUILTINS_TTL_MS, ttlResolution: MEMO_TTL_RESOLUTION_MS });
  /** Per database, the functions and operators of other schemas (an overload of a built-in's name counts): DDL drops them. */
  readonly #users = new LRUCache<string, Memo<UserObjects>>({ max: MEMO_SIZE, ttl: PLAN_TTL_MS, ttlResolution: MEMO_TTL_RESOLUTION_MS });
  readonly #catalog: Catalog | undefined;
  readonly #allowed: ReadonlySet<string>;

  constructor(catalog: Catalog | undefined, allowed: readonly string[]) {
    this.#catalog = catalog;
    this.#allowed = new Set(allowed.map((f) => f.toLowerCase()));
  }

  /** See Planner.warm. */
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

  /**
   * Whether a user function (any schema outside pg_catalog) may answer one of `calls`
   * (`name/argument count`) in `database`: a session-neutral built-in's name is neutral only when
   * no user overload can take its place. While the catalog has not said, the answer is a promise
   * (the catalog is asked now); a catalog that cannot be asked says yes.
   */
  mayBeUserFunction(database: string, user: string, calls: readonly string[]): boolean | Promise<boolean> {
    if (calls.length === 0) return false;
    const sort = (users: UserObjects): boolean => users.functions.sort(calls).unknown.length < calls.length;
    const memo = this.#users.get(database);
    if (memo?.loaded !== undefined) return sort(memo.loaded);
    if (memo === undefined) this.warm(database, user);
    return this.#users.get(database)!.loading.then(sort, () => true);
  }

  /** Drops what is known of `database` that DDL may change (its user objects and call answers). */
  forgetDatabase(database: string): void {
    const prefix = `${database}\u0000`;
    for (const key of this.#calls.keys()) if (key.startsWith(prefix)) this.#calls.delete(key);
    this.#users.delete(database);
  }

  /** Drops what DDL may change in any database. */
  forgetAll(): void {
    this.#calls.clear();
    this.#users.clear();
  }

  /** See Planner.mayWrite (after its check of a cacheable plan). */
  mayWrite(database: string, c: Classification): boolean {
    const calls = c.functions.filter((f) => !this.isAllowed(f));
    if (calls.length === 0 && c.operators.length === 0 && c.attributes.length === 0) return false;
    const builtins = this.#builtins.get(database)?.loaded;
    const users = this.#users.get(database)?.loaded;
    if (builtins === undefined || users === undefined) return calls.length > 0;
    if (c.operators.some((o) => !o.startsWith('pg_catalog.') && users.volatileOperators.has(o.split('.').at(-1)!))) return true;
    if (users.functions.sort(c.attributes.map((a) => `${a}/1`)).volatile.length > 0) return true;
    const fromUsers = users.functions.sort(calls);
    return fromUsers.volatile.length > 0 || builtins.sort(fromUsers.unknown).unknown.length > 0;
  }

  /** Why the calls, operators and attribute names of `c` keep it from the cache, or undefined when all are IMMUTABLE. */
  async problem(database: string, user: string, c: Classification, columns: ReadonlySet<string>): Promise<string | undefined> {
    if (!this.#needsCheck(c, columns)) return undefined;
    let found: CallCheck;
    try {
      const builtins = await (this.#builtins.get(database) ?? this.#loadBuiltins(database, user)).loading;
      const users = await (this.#users.get(database) ?? this.#loadUsers(database, user)).loading;
      found = check(c, columns, builtins, users, (call) => this.isAllowed(call));
    } catch (err) {
      return unreachable(err);
    }
    if (found.problem !== undefined) return found.problem;
    return found.unknown.length === 0 ? undefined : this.#askCalls(database, user, found.unknown);
  }

  /** The check of `c` without waiting: undefined when what the catalog knows of the database has not been loaded yet. */
  checkNow(database: string, c: Classification, columns: ReadonlySet<string>): CallCheck | undefined {
    if (!this.#needsCheck(c, columns)) return { problem: undefined, unknown: [] };
    if (this.#catalog === undefined) return { problem: 'the catalog is off: relations and functions cannot be checked', unknown: [] };
    const builtins = this.#builtins.get(database)?.loaded;
    const users = this.#users.get(database)?.loaded;
    if (builtins === undefined || users === undefined) return undefined;
    return check(c, columns, builtins, users, (call) => this.isAllowed(call));
  }

  /** The allow list names functions without argument counts (`slugify`, `app.slugify`). */
  isAllowed(call: string): boolean {
    const name = call.split('/')[0]!.toLowerCase();
    return this.#allowed.has(name) || this.#allowed.has(name.split('.').at(-1)!);
  }

  #needsCheck(c: Classification, columns: ReadonlySet<string>): boolean {
    return (
      c.functions.some((f) => !this.isAllowed(f)) ||
      c.operators.length > 0 ||
      c.types.length > 0 ||
      c.attributes.some((a) => !columns.has(a)) ||
      c.reads.length > 0
    );
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
      const asked: Promise<string | undefined> = this.#catalog!.volatileFunctions(database, user, calls).then(callsProblem, (err: unknown) => {
        this.#calls.set(key, asked, { ttl: CATALOG_RETRY_MS });
        return unreachable(err);
      });
      this.#calls.set(key, asked);
      answer = asked;
    }
    return answer;
  }
}

/**
 * Checks what `c` runs against one database's functions and operators: a user operator of a name
 * used that is not IMMUTABLE, a name read as `x.name` that is no column and names a function of
 * one argument that is not IMMUTABLE, a call any overload of which (built-in or in any schema) is
 * not IMMUTABLE; a relation, a cast or a call of a type whose values are read from the catalog.
 * Calls neither list knows are left for the catalog.
 */
function check(c: Classification, columns: ReadonlySet<string>, builtins: BuiltinFunctions, users: UserObjects, allowed: (call: string) => boolean): CallCheck {
  const operator = c.operators.find((o) => !o.startsWith('pg_catalog.') && users.volatileOperators.has(o.split('.').at(-1)!));
  if (operator !== undefined) return { problem: `uses the operator ${operator.split('.').at(-1)}, which is not IMMUTABLE`, unknown: [] };
  const type = c.types.find((t) => users.volatileTypes.has(t));
  if (type !== undefined) return { problem: `casts to ${type}, whose input or cast is not IMMUTABLE`, unknown: [] };
  // A relation's row type is built on a catalog type when one of its columns is: it prints names, and a literal compared with it is looked up.
  const catalogRelation = c.reads.find((r) => users.catalogTypes.has(r.name));
  if (catalogRelation !== undefined)
    return { problem: `reads ${catalogRelation.name}, a column of which holds values read from the catalog (regclass, …)`, unknown: [] };
  const catalogType = c.types.find((t) => users.catalogTypes.has(t));
  if (catalogType !== undefined) return { problem: `casts to ${catalogType}, whose value depends on the catalog`, unknown: [] };
  // Constants cast to one are checked for time words; a computed value is not (see classify-walk.ts): refused either way.
  const clockType = c.types.find((t) => users.clockTypes.has(t));
  if (clockType !== undefined)
    return { problem: `casts to ${clockType}, which is built on a date/time type (text such as 'now' would read the clock)`, unknown: [] };
  const attributes = c.attributes.filter((a) => !columns.has(a) && !allowed(`${a}/1`)).map((a) => `${a}/1`);
  const attribute = attributes.find((a) => builtins.sort([a]).volatile.length > 0 || users.functions.sort([a]).volatile.length > 0);
  if (attribute !== undefined) return { problem: volatilityProblem([attribute]), unknown: [] };
  const catalogAttribute = attributes.find((a) => builtins.sort([a]).catalog.length > 0 || users.functions.sort([a]).catalog.length > 0);
  if (catalogAttribute !== undefined) return { problem: catalogProblem([catalogAttribute]), unknown: [] };
  const calls = c.functions.filter((f) => !allowed(f));
  const fromBuiltins = builtins.sort(calls);
  const fromUsers = users.functions.sort(calls);
  const volatile = [...new Set([...fromBuiltins.volatile, ...fromUsers.volatile])];
  if (volatile.length > 0) return { problem: volatilityProblem(volatile), unknown: [] };
  const catalog = [...new Set([...fromBuiltins.catalog, ...fromUsers.catalog])];
  if (catalog.length > 0) return { problem: catalogProblem(catalog), unknown: [] };
  return { problem: undefined, unknown: fromBuiltins.unknown.filter((u) => fromUsers.unknown.includes(u)) };
}

/** Why calls that are not IMMUTABLE keep a statement from the cache; undefined for none. */
function volatilityProblem(volatile: readonly string[]): string | undefined {
  return volatile.length === 0 ? undefined : `calls ${shortNames(volatile)}, which is not IMMUTABLE`;
}

/** Why calls of functions taking or returning a catalog type keep a statement from the cache (a name argument is looked up, a result printed as a name). */
function catalogProblem(calls: readonly string[]): string | undefined {
  return calls.length === 0 ? undefined : `calls ${shortNames(calls)}, which takes or returns a value read from the catalog (regclass, regconfig, …)`;
}

function callsProblem(found: CallsVolatility): string | undefined {
  return volatilityProblem(found.volatile) ?? catalogProblem(found.catalog);
}

function shortNames(calls: readonly string[]): string {
  return calls.map((v) => v.split('/')[0]!.split('.').at(-1)).join(', ');
}
