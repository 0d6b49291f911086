/**
 * Questions only the server can answer about a statement: what kind of relation each name is
 * (views resolve to their base tables, partitioned and inheritance parents to their children) and
 * which functions are IMMUTABLE (the built-ins all at once, others per call). Asked on a
 * client's session or sidecache's own connection (catalog-transport.ts), never on a hit: the caller
 * remembers the answers. The SQL texts are in catalog-queries.ts; failures are sorted in catalog-errors.ts.
 */
import type { CatalogTransport } from './catalog-transport.js';
import { VIEW_REASON } from './classification.js';
import { type RelationRef, SYSTEM_SCHEMAS } from './classify.js';
import { BUILTINS, CALLS, EXPAND, MISSING, USER_OBJECTS, WRITE_REACH } from './catalog-queries.js';
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
  /** Names of types, in any schema, whose values are read from the catalog: reg* and aclitem, and domains, arrays, ranges and composites of them. */
  catalogTypes: ReadonlySet<string>;
  /** Names of types outside pg_catalog built on a date/time type (domains, composites, …): text cast to one may read the clock. */
  clockTypes: ReadonlySet<string>;
}

/** The calls that may resolve to a function that is not IMMUTABLE, and those of IMMUTABLE ones that take or return a catalog type. */
export interface CallsVolatility {
  volatile: string[];
  catalog: string[];
}

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
  readonly #transport: CatalogTransport;
  readonly #onError: (database: string, user: string, err: unknown) => void;

  /**
   * `transport` carries the questions (in band over client sessions, or sidecache's own
   * connections); `onError` hears of every question that could not be asked (to log and count it).
   */
  constructor(transport: CatalogTransport, onError: (database: string, user: string, err: unknown) => void = () => undefined) {
    this.#transport = transport;
    this.#onError = onError;
  }

  /** Expands relation names; throws when the catalog cannot be asked. */
  async relations(database: string, user: string, refs: readonly RelationRef[]): Promise<RelationFacts> {
    if (refs.length === 0) return { names: [], problem: undefined, views: [], columns: [] };
    const [names, schemas] = nameArrays(refs);
    const rows = await this.#query<Row>(database, user, EXPAND, [names, schemas]);
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
    const rows = await this.#query<{ relname: string; side_effects: boolean }>(database, user, WRITE_REACH, [names, schemas, cascade]);
    return { names: [...new Set(rows.map((r) => r.relname))], sideEffects: rows.some((r) => r.side_effects) };
  }

  /** The built-ins and the objects of other schemas in one round trip (a session's first statement waits on both). */
  async functions(database: string, user: string): Promise<{ builtins: BuiltinFunctions; users: UserObjects }> {
    const text = `SELECT *, 'f' AS kind, true AS builtin FROM (${BUILTINS}) b UNION ALL SELECT *, false AS builtin FROM (${USER_OBJECTS}) u`;
    const rows = await this.#query<UserRow & { builtin: boolean }>(database, user, text, []);
    return { builtins: new BuiltinFunctions(rows.filter((r) => r.builtin)), users: userObjects(rows.filter((r) => !r.builtin)) };
  }

  /** Functions and operators outside pg_catalog; throws when the catalog cannot be asked. */
  async userObjects(database: string, user: string): Promise<UserObjects> {
    return userObjects(await this.#query<UserRow>(database, user, USER_OBJECTS, []));
  }

  /** Which of `tables` (as `rules[].tables` spells them) name no relation of the database. */
  async missingTables(database: string, user: string, tables: readonly string[]): Promise<string[]> {
    const refs = tables.map((t) => {
      const parts = t.split('.').map((p) => p.replace(/^"|"$/g, ''));
      return { schema: parts.length > 1 ? parts.at(-2)! : null, name: parts.at(-1)! };
    });
    const rows = await this.#query<{ i: string }>(database, user, MISSING, [refs.map((r) => r.schema), refs.map((r) => r.name)]);
    return rows.map((r) => tables[Number(r.i) - 1]!);
  }

  /** The database's built-in functions (pg_catalog), in one query; throws when the catalog cannot be asked. */
  async builtins(database: string, user: string): Promise<BuiltinFunctions> {
    return new BuiltinFunctions(await this.#query<ProcRow>(database, user, BUILTINS, []));
  }

  /**
   * The calls (`[schema.]name/n`) that may resolve to a function that is not IMMUTABLE, unknown
   * ones included, and the others that may resolve to one taking or returning a catalog type. Overloads are matched by name and argument count, not types: stricter, never staler.
   */
  async volatileFunctions(database: string, user: string, calls: readonly string[]): Promise<CallsVolatility> {
    if (calls.length === 0) return { volatile: [], catalog: [] };
    const parsed = calls.map((c) => {
      const [qualified, n] = c.split('/');
      return { name: qualified!.split('.').at(-1)!, n: Number(n) };
    });
    const rows = await this.#query<{ i: string; immutable: boolean; catalog: boolean }>(database, user, CALLS, [
      parsed.map((p) => p.name),
      parsed.map((p) => p.n),
    ]);
    const immutable = new Set(rows.filter((r) => r.immutable).map((r) => Number(r.i) - 1));
    const catalog = new Set(rows.filter((r) => r.catalog).map((r) => Number(r.i) - 1));
    return { volatile: calls.filter((_c, i) => !immutable.has(i)), catalog: calls.filter((_c, i) => immutable.has(i) && catalog.has(i)) };
  }

  /** Ends whatever of sidecache's own holds `database` open, so a DROP DATABASE is not refused because sidecache is "accessing" it. */
  closeDatabase(database: string): Promise<void> {
    return this.#transport.closeDatabase(database);
  }

  close(): Promise<void> {
    return this.#transport.close();
  }

  #query<R>(database: string, user: string, text: string, values: unknown[]): Promise<R[]> {
    const asked = this.#transport.query<R>(database, user, text, values);
    asked.catch((err: unknown) => this.#onError(database, user, err));
    return asked;
  }
}

/** A row of USER_OBJECTS: a function (`f`), an operator (`o`), a type (`t`), a catalog type (`c`) or a type built on a date/time type (`k`). */
type UserRow = ProcRow & { kind: 'f' | 'o' | 't' | 'c' | 'k' };

function userObjects(rows: readonly UserRow[]): UserObjects {
  const names = (kind: UserRow['kind']): Set<string> => new Set(rows.filter((r) => r.kind === kind).map((r) => r.name));
  return {
    functions: new BuiltinFunctions(
      rows.filter((r) => r.kind === 'f'),
      false,
    ),
    volatileOperators: names('o'),
    volatileTypes: names('t'),
    catalogTypes: names('c'),
    clockTypes: names('k'),
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
  if (row.volatile_view) return `${VIEW_REASON}${row.relname} calls functions that are not IMMUTABLE`;
  return undefined;
}
