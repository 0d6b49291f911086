/**
 * The result of classifying a SQL text: what it reads, calls and writes, and how it changes the
 * session; `notCacheable` builds one that keeps the statement from the cache.
 */

/** A relation as written in the statement: lower-cased by the parser unless quoted. */
export interface RelationRef {
  schema: string | undefined;
  name: string;
  /**
   * The name is also a CTE's: which one a reference means depends on where it stands (a CTE is
   * visible only in its WITH's scope), so it counts as the relation too when one of that name exists.
   */
  maybeCte?: boolean;
}

/** How running the statement changes what later statements of the session return. */
export type SessionEffect = 'none' | 'set' | 'reset' | 'taint';

export interface Classification {
  /** A single read-only SELECT with nothing volatile; still subject to catalog checks. */
  cacheable: boolean;
  /** Why not, when not (also shown by /cache/explain). */
  reason: string | undefined;
  reads: RelationRef[];
  /** Every call (`[schema.]name/argument count`), built-ins included: the database's catalog (or the allow list) must vouch that each is IMMUTABLE. */
  functions: string[];
  /** Every operator named (`[schema.]op`): the catalog must vouch that no user operator of that name is anything but IMMUTABLE. */
  operators: string[];
  /** Types constants and expressions are cast to (last name part): the catalog must vouch that their input and casts are IMMUTABLE. */
  types: string[];
  /** Names read as `x.name` or `(x).name`: a column, or a call `name(x)` (attribute notation) when no relation read has such a column. */
  attributes: string[];
  /** Relations the statement writes or alters. */
  writes: RelationRef[];
  /** The statement may change anything of the database (grants, policies, functions, renames, …). */
  invalidatesAll: boolean;
  /** The statement may change results in every database of the server (roles, databases, code that can do either, unknown statements); implies `invalidatesAll`. */
  cluster: boolean;
  /** TRUNCATE … CASCADE: the write reaches every table that references a written one, whatever its foreign key's actions. */
  cascade: boolean;
  session: SessionEffect;
  /** Starts, ends or otherwise touches a transaction block (BEGIN, COMMIT, …). */
  transaction: boolean;
  /** Ends a transaction even when the session stays in a block (COMMIT AND CHAIN, ROLLBACK AND CHAIN, PREPARE TRANSACTION). */
  commits: boolean;
  /** DROP DATABASE: the database it drops (sidecache's own connections to it must be gone first). */
  dropsDatabase?: string;
}

/**
 * How every reason a statement is refused for what a view it reads runs begins: the session and
 * write effects treat such a statement as running code its text does not show.
 */
export const VIEW_REASON = 'the view ';

/** Schemas of the system catalog: reads of them are never cached (the catalog rejects them too, for names resolved there). */
export const SYSTEM_SCHEMAS: ReadonlySet<string> = new Set(['pg_catalog', 'information_schema', 'pg_toast']);
export function notCacheable(reason: string, extra: Partial<Classification> = {}): Classification {
  const c: Classification = {
    cacheable: false,
    reason,
    reads: [],
    functions: [],
    operators: [],
    types: [],
    attributes: [],
    writes: [],
    invalidatesAll: false,
    cluster: false,
    cascade: false,
    session: 'none',
    transaction: false,
    commits: false,
    ...extra,
  };
  if (c.cluster) c.invalidatesAll = true;
  return c;
}
