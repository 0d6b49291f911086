/**
 * Questions only the server can answer about a statement: what kind of relation each name is
 * (views resolve to their base tables, partitioned and inheritance parents to their children) and
 * which functions are IMMUTABLE (the built-ins all at once, others per call). Asked on sidecache's
 * own connection per database, never on a hit: the caller remembers the answers.
 */
import pg from 'pg';
import type { Logger } from '../../log.js';
import { type RelationRef, SYSTEM_SCHEMAS } from './classify.js';
import { BuiltinFunctions, type ProcRow } from './volatility.js';

export interface RelationFacts {
  /** Every relation the names stand for: themselves, views' base tables, partitions, children. */
  names: string[];
  /** Set when a name cannot be cached: unknown, temporary, foreign, a sequence, with row-level security, in a system schema, or a view over something volatile. */
  problem: string | undefined;
  /** The definition of every view reached (`pg_get_viewdef`), for the planner to classify like a statement. */
  views: { name: string; definition: string }[];
  /** Every column of every relation reached: a name read as `x.name` that is none of these may be a call. */
  columns: string[];
}

/** What a write reaches. */
export interface WriteReach {
  /** The written relations, and every relation whose rows the write changes or whose reads show them. */
  names: string[];
  /** A reached table has user triggers or rules: the write may change anything of the database. */
  sideEffects: boolean;
}

/** Functions and operators outside pg_catalog (they change with DDL, unlike the built-ins). */
export interface UserObjects {
  functions: BuiltinFunctions;
  /** Names of operators outside pg_catalog whose function is not IMMUTABLE. */
  volatileOperators: ReadonlySet<string>;
  /** Names of types outside pg_catalog whose input function, or a cast to which, is not IMMUTABLE. */
  volatileTypes: ReadonlySet<string>;
}

/**
 * Relations reached from the named ones through views' rewrite rules and pg_inherits, with a
 * flag for views that call functions that are not IMMUTABLE.
 */
const EXPAND = `
WITH RECURSIVE roots AS (
  SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relname = ANY($1::text[]) AND ($2::text[] IS NULL OR n.nspname = ANY($2::text[]))
), reach(oid) AS (
  SELECT oid FROM roots
  UNION
  SELECT x.child FROM reach JOIN LATERAL (
    SELECT d.refobjid AS child FROM pg_rewrite r
      JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid AND d.refclassid = 'pg_class'::regclass
    WHERE r.ev_class = reach.oid AND d.refobjid <> reach.oid
    UNION ALL
    SELECT i.inhrelid FROM pg_inherits i WHERE i.inhparent = reach.oid
  ) x ON true
)
SELECT c.relname, c.relkind, c.relpersistence, n.nspname, c.relrowsecurity OR c.relforcerowsecurity AS rls,
  CASE WHEN c.relkind = 'v' THEN pg_get_viewdef(c.oid) END AS viewdef,
  ARRAY(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns,
  EXISTS (SELECT 1 FROM pg_rewrite r JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
          JOIN pg_proc p ON d.refclassid = 'pg_proc'::regclass AND p.oid = d.refobjid
          WHERE r.ev_class = c.oid AND p.provolatile <> 'i') AS volatile_view
FROM reach JOIN pg_class c ON c.oid = reach.oid JOIN pg_namespace n ON n.oid = c.relnamespace`;

/**
 * What a write to the named relations reaches (https://www.postgresql.org/docs/current/ddl-partitioning.html,
 * https://www.postgresql.org/docs/current/ddl-constraints.html#DDL-CONSTRAINTS-FK): down ('d') to
 * what it changes — partitions and inheritance children, a view's base tables, and tables whose
 * foreign keys cascade, set null or set default (any foreign key for TRUNCATE … CASCADE) — and up
 * ('u') from each of those to what shows its rows: parents and views over it.
 */
const WRITE_REACH = `
WITH RECURSIVE roots AS (
  SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relname = ANY($1::text[]) AND ($2::text[] IS NULL OR n.nspname = ANY($2::text[]))
), reach(oid, dir) AS (
  SELECT oid, 'd' FROM roots
  UNION
  SELECT x.rel, x.dir FROM reach JOIN LATERAL (
    SELECT i.inhrelid AS rel, 'd' AS dir FROM pg_inherits i WHERE reach.dir = 'd' AND i.inhparent = reach.oid
    UNION ALL
    SELECT d.refobjid, 'd' FROM pg_rewrite r
      JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid AND d.refclassid = 'pg_class'::regclass
    WHERE reach.dir = 'd' AND r.ev_class = reach.oid AND d.refobjid <> reach.oid
    UNION ALL
    SELECT f.conrelid, 'd' FROM pg_constraint f
    WHERE reach.dir = 'd' AND f.contype = 'f' AND f.confrelid = reach.oid
      AND ($3::bool OR f.confdeltype IN ('c', 'n', 'd') OR f.confupdtype IN ('c', 'n', 'd'))
    UNION ALL
    SELECT i.inhparent, 'u' FROM pg_inherits i WHERE i.inhrelid = reach.oid
    UNION ALL
    SELECT r.ev_class, 'u' FROM pg_depend d
      JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
    WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = reach.oid AND r.ev_class <> reach.oid
  ) x ON true
)
SELECT DISTINCT c.relname,
  EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal)
  OR EXISTS (SELECT 1 FROM pg_rewrite r WHERE r.ev_class = c.oid AND r.rulename <> '_RETURN') AS side_effects
FROM reach JOIN pg_class c ON c.oid = reach.oid`;

/**
 * In one round trip, in the built-ins' columns: functions outside pg_catalog (`kind` f), then the
 * names of operators outside pg_catalog backed by a function that is not IMMUTABLE (o), of types
 * outside pg_catalog whose input function is not IMMUTABLE, and of the targets of casts through
 * such a function (t).
 */
const USER_OBJECTS = `
SELECT DISTINCT proname AS name, pronargs - pronargdefaults AS min_args, pronargs AS max_args,
  provariadic <> 0 AS variadic, provolatile = 'i' AS immutable, 'f' AS kind
FROM pg_proc WHERE pronamespace <> 'pg_catalog'::regnamespace
UNION ALL
SELECT DISTINCT o.oprname, 0, 0, false, false, 'o' FROM pg_operator o JOIN pg_proc p ON p.oid = o.oprcode
WHERE o.oprnamespace <> 'pg_catalog'::regnamespace AND p.provolatile <> 'i'
UNION ALL
SELECT DISTINCT t.typname, 0, 0, false, false, 't' FROM pg_type t JOIN pg_proc p ON p.oid = t.typinput
WHERE t.typnamespace <> 'pg_catalog'::regnamespace AND t.typtype = 'b' AND t.typcategory <> 'A' AND p.provolatile <> 'i'
UNION ALL
SELECT DISTINCT t.typname, 0, 0, false, false, 't' FROM pg_cast c JOIN pg_proc p ON p.oid = c.castfunc JOIN pg_type t ON t.oid = c.casttarget
WHERE p.pronamespace <> 'pg_catalog'::regnamespace AND p.provolatile <> 'i'`;

/** Which of the names (`[schema.]name`, compared without case) no relation has. */
const MISSING = `
SELECT f.i FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS f(schema, name, i)
WHERE NOT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE lower(c.relname) = lower(f.name) AND (f.schema IS NULL OR lower(n.nspname) = lower(f.schema)))`;

/** Every built-in function's name, argument counts and volatility (the same columns on PostgreSQL 13 to 18). */
const BUILTINS = `
SELECT DISTINCT proname AS name, pronargs - pronargdefaults AS min_args, pronargs AS max_args,
  provariadic <> 0 AS variadic, provolatile = 'i' AS immutable
FROM pg_proc WHERE pronamespace = 'pg_catalog'::regnamespace`;

/** Per call (name, argument count): are all overloads it could resolve to, in any schema, IMMUTABLE? */
const CALLS = `
SELECT f.i, count(p.oid) > 0 AND bool_and(p.provolatile = 'i') AS immutable
FROM unnest($1::text[], $2::int[]) WITH ORDINALITY AS f(name, n, i)
LEFT JOIN pg_proc p ON p.proname = f.name
  AND (p.provariadic <> 0 OR f.n BETWEEN p.pronargs - p.pronargdefaults AND p.pronargs)
GROUP BY f.i`;

interface Row {
  relname: string;
  relkind: string;
  relpersistence: string;
  nspname: string;
  rls: boolean;
  viewdef: string | null;
  columns: string[];
  volatile_view: boolean;
}

export class Catalog {
  readonly #clients = new Map<string, Promise<pg.Client>>();
  /** Per connection (database and user), the question in flight, which the next one waits for. */
  readonly #chains = new Map<string, Promise<unknown>>();
  readonly #config: (database: string, user: string) => pg.ClientConfig;
  readonly #log: Logger;

  readonly #onError: (database: string, user: string, err: unknown) => void;

  /**
   * `config` says how to reach one database (credentials from `upstream` or `catalogUrl`);
   * `onError` hears of every question that could not be asked (to log and count it).
   */
  constructor(
    config: (database: string, user: string) => pg.ClientConfig,
    log: Logger,
    onError: (database: string, user: string, err: unknown) => void = () => undefined,
  ) {
    this.#config = config;
    this.#log = log;
    this.#onError = onError;
  }

  /** Expands relation names; throws when the catalog cannot be asked. */
  async relations(database: string, user: string, refs: readonly RelationRef[]): Promise<RelationFacts> {
    if (refs.length === 0) return { names: [], problem: undefined, views: [], columns: [] };
    const [names, schemas] = nameArrays(refs);
    const rows = (await this.#query<Row>(database, user, EXPAND, [names, schemas])).rows;
    const found = new Set(rows.map((r) => r.relname));
    // A name that may only be a CTE's is fine to miss; any other must be a relation.
    const missing = names.find((n) => !found.has(n) && !refs.every((r) => r.name !== n || r.maybeCte === true));
    if (missing !== undefined) return { names: [], problem: `unknown relation ${missing}`, views: [], columns: [] };
    return {
      names: [...new Set(rows.map((r) => r.relname))],
      problem: rows.map(relationProblem).find((p) => p !== undefined),
      views: rows.flatMap((r) => (r.viewdef === null ? [] : [{ name: `${r.nspname}.${r.relname}`, definition: r.viewdef }])),
      columns: [...new Set(rows.flatMap((r) => r.columns))],
    };
  }

  /** What a write to `refs` reaches (see WRITE_REACH); throws when the catalog cannot be asked. */
  async writeReach(database: string, user: string, refs: readonly RelationRef[], cascade: boolean): Promise<WriteReach> {
    const [names, schemas] = nameArrays(refs);
    const rows = (await this.#query<{ relname: string; side_effects: boolean }>(database, user, WRITE_REACH, [names, schemas, cascade])).rows;
    return { names: [...new Set(rows.map((r) => r.relname))], sideEffects: rows.some((r) => r.side_effects) };
  }

  /** The built-ins and the objects of other schemas in one round trip (a session's first statement waits on both). */
  async functions(database: string, user: string): Promise<{ builtins: BuiltinFunctions; users: UserObjects }> {
    const text = `SELECT *, 'f' AS kind, true AS builtin FROM (${BUILTINS}) b UNION ALL SELECT *, false AS builtin FROM (${USER_OBJECTS}) u`;
    const { rows } = await this.#query<UserRow & { builtin: boolean }>(database, user, text, []);
    return { builtins: new BuiltinFunctions(rows.filter((r) => r.builtin)), users: userObjects(rows.filter((r) => !r.builtin)) };
  }

  /** Functions and operators outside pg_catalog; throws when the catalog cannot be asked. */
  async userObjects(database: string, user: string): Promise<UserObjects> {
    return userObjects((await this.#query<UserRow>(database, user, USER_OBJECTS, [])).rows);
  }

  /** Which of `tables` (as `rules[].tables` spells them) name no relation of the database. */
  async missingTables(database: string, user: string, tables: readonly string[]): Promise<string[]> {
    const refs = tables.map((t) => {
      const parts = t.split('.').map((p) => p.replace(/^"|"$/g, ''));
      return { schema: parts.length > 1 ? parts.at(-2)! : null, name: parts.at(-1)! };
    });
    const { rows } = await this.#query<{ i: string }>(database, user, MISSING, [refs.map((r) => r.schema), refs.map((r) => r.name)]);
    return rows.map((r) => tables[Number(r.i) - 1]!);
  }

  /** The database's built-in functions (pg_catalog), in one query; throws when the catalog cannot be asked. */
  async builtins(database: string, user: string): Promise<BuiltinFunctions> {
    return new BuiltinFunctions((await this.#query<ProcRow>(database, user, BUILTINS, [])).rows);
  }

  /**
   * The calls (`[schema.]name/n`) that may resolve to a function that is not IMMUTABLE, unknown
   * ones included. Overloads are matched by name and argument count, not types: stricter, never staler.
   */
  async volatileFunctions(database: string, user: string, calls: readonly string[]): Promise<string[]> {
    if (calls.length === 0) return [];
    const parsed = calls.map((c) => {
      const [qualified, n] = c.split('/');
      return { name: qualified!.split('.').at(-1)!, n: Number(n) };
    });
    const { rows } = await this.#query<{ i: string; immutable: boolean }>(database, user, CALLS, [parsed.map((p) => p.name), parsed.map((p) => p.n)]);
    const immutable = new Set(rows.filter((r) => r.immutable).map((r) => Number(r.i) - 1));
    return calls.filter((_c, i) => !immutable.has(i));
  }

  async close(): Promise<void> {
    const clients = [...this.#clients.values()];
    this.#clients.clear();
    await Promise.all(clients.map(async (c) => (await c.catch(() => undefined))?.end().catch(() => undefined)));
  }

  #query<R extends pg.QueryResultRow>(database: string, user: string, text: string, values: unknown[]): Promise<pg.QueryResult<R>> {
    // One question at a time per connection (pg queues them too, but warns); other connections do not wait.
    const key = `${database}\u0000${user}`;
    const run = (this.#chains.get(key) ?? Promise.resolve()).then(() => this.#ask<R>(database, user, text, values));
    const settled = run.catch((err: unknown) => this.#onError(database, user, err));
    this.#chains.set(key, settled);
    void settled.then(() => {
      if (this.#chains.get(key) === settled) this.#chains.delete(key);
    });
    return run;
  }

  async #ask<R extends pg.QueryResultRow>(database: string, user: string, text: string, values: unknown[]): Promise<pg.QueryResult<R>> {
    const client = await this.#client(database, user);
    try {
      return await client.query<R>(text, values);
    } catch (err) {
      // A broken connection is replaced on the next question; this one is answered "unknown".
      this.#clients.delete(`${database}\u0000${user}`);
      client.end().catch(() => undefined);
      throw err;
    }
  }

  #client(database: string, user: string): Promise<pg.Client> {
    const key = `${database}\u0000${user}`;
    let client = this.#clients.get(key);
    if (client === undefined) {
      client = (async () => {
        const c = new pg.Client(this.#config(database, user));
        c.on('error', (err) => {
          this.#log.debug('catalog connection failed', { database, err: err.message });
          this.#clients.delete(key);
        });
        await c.connect();
        return c;
      })();
      client.catch(() => this.#clients.delete(key));
      this.#clients.set(key, client);
    }
    return client;
  }
}

/** A row of USER_OBJECTS: a function (`f`), an operator (`o`) or a type (`t`). */
type UserRow = ProcRow & { kind: 'f' | 'o' | 't' };

function userObjects(rows: readonly UserRow[]): UserObjects {
  const names = (kind: UserRow['kind']): Set<string> => new Set(rows.filter((r) => r.kind === kind).map((r) => r.name));
  return {
    functions: new BuiltinFunctions(
      rows.filter((r) => r.kind === 'f'),
      false,
    ),
    volatileOperators: names('o'),
    volatileTypes: names('t'),
  };
}

/** Names (and schemas, when every name has one) as the queries' $1 and $2. */
function nameArrays(refs: readonly RelationRef[]): [string[], string[] | null] {
  const names = [...new Set(refs.map((r) => r.name))];
  const schemas = refs.every((r) => r.schema !== undefined) ? [...new Set(refs.map((r) => r.schema!))] : null;
  return [names, schemas];
}

/** Tables, partitioned tables, views and materialized views: what a read may cache. */
const CACHEABLE_KINDS = new Set(['r', 'p', 'v', 'm']);

function relationProblem(row: Row): string | undefined {
  if (SYSTEM_SCHEMAS.has(row.nspname)) return `reads the system catalog (${row.nspname}.${row.relname})`;
  if (row.relpersistence === 't') return `reads the temporary relation ${row.relname}`;
  if (row.relkind === 'f') return `reads the foreign table ${row.relname}`;
  if (row.relkind === 'S') return `reads the sequence ${row.nspname}.${row.relname}`;
  if (!CACHEABLE_KINDS.has(row.relkind)) return `reads ${row.nspname}.${row.relname}, a relation of kind '${row.relkind}'`;
  if (row.rls) return `${row.nspname}.${row.relname} has row-level security`;
  if (row.volatile_view) return `the view ${row.relname} calls functions that are not IMMUTABLE`;
  return undefined;
}

/** Why the catalog could not be asked, as the metric's `reason` label. */
export type CatalogErrorReason = 'authentication' | 'permission' | 'unreachable' | 'timeout' | 'other';

/** Sorts a catalog failure by what an operator would do about it. */
export function catalogErrorReason(err: unknown): CatalogErrorReason {
  const { code, message } = err as { code?: string; message?: string };
  // 28000 invalid_authorization_specification, 28P01 invalid_password; node-postgres's own SASL/password errors.
  if (code === '28000' || code === '28P01' || /password|SASL/i.test(message ?? '')) return 'authentication';
  if (code === '42501') return 'permission';
  // 57014 query_canceled (statement_timeout), 55P03 lock_not_available (lock_timeout).
  if (code === '57014' || code === '55P03' || /timeout/i.test(message ?? '')) return 'timeout';
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH' || code === 'ECONNRESET' || code === '3D000' || code === '57P03')
    return 'unreachable';
  return 'other';
}

/** What to do about a catalog failure, for the warning. */
export const CATALOG_FIX: Record<CatalogErrorReason, string> = {
  authentication:
    'the upstream asks for a password the catalog connection does not have: set postgres[].catalogUrl to a URL with a user and password allowed to read pg_catalog',
  permission: 'grant the catalog identity (postgres[].catalogUrl, or the client user) access to pg_catalog and the tables it reads',
  unreachable: 'check that postgres[].catalogUrl (or upstream) reaches a running server and database',
  timeout: 'the catalog answered too slowly; check the server load',
  other: 'see the error; statements are passed through uncached meanwhile',
};
