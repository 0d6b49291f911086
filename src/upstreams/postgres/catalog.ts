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
  /** Set when a name cannot be cached: unknown, temporary, foreign, in a system schema, or a view over something volatile. */
  problem: string | undefined;
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
SELECT c.relname, c.relkind, c.relpersistence, n.nspname,
  EXISTS (SELECT 1 FROM pg_rewrite r JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
          JOIN pg_proc p ON d.refclassid = 'pg_proc'::regclass AND p.oid = d.refobjid
          WHERE r.ev_class = c.oid AND p.provolatile <> 'i') AS volatile_view
FROM reach JOIN pg_class c ON c.oid = reach.oid JOIN pg_namespace n ON n.oid = c.relnamespace`;

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
  volatile_view: boolean;
}

export class Catalog {
  readonly #clients = new Map<string, Promise<pg.Client>>();
  /** One question at a time per connection (pg queues them too, but warns). */
  #chain: Promise<unknown> = Promise.resolve();
  readonly #config: (database: string, user: string) => pg.ClientConfig;
  readonly #log: Logger;

  /** `config` says how to reach one database (credentials from `upstream` or `catalogUrl`). */
  constructor(config: (database: string, user: string) => pg.ClientConfig, log: Logger) {
    this.#config = config;
    this.#log = log;
  }

  /** Expands relation names; throws when the catalog cannot be asked. */
  async relations(database: string, user: string, refs: readonly RelationRef[]): Promise<RelationFacts> {
    if (refs.length === 0) return { names: [], problem: undefined };
    const names = [...new Set(refs.map((r) => r.name))];
    const schemas = refs.every((r) => r.schema !== undefined) ? [...new Set(refs.map((r) => r.schema!))] : null;
    const rows = (await this.#query<Row>(database, user, EXPAND, [names, schemas])).rows;
    const found = new Set(rows.map((r) => r.relname));
    const missing = names.find((n) => !found.has(n));
    if (missing !== undefined) return { names: [], problem: `unknown relation ${missing}` };
    return { names: [...new Set(rows.map((r) => r.relname))], problem: rows.map(relationProblem).find((p) => p !== undefined) };
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
    const run = this.#chain.then(() => this.#ask<R>(database, user, text, values));
    this.#chain = run.catch(() => undefined);
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

function relationProblem(row: Row): string | undefined {
  if (SYSTEM_SCHEMAS.has(row.nspname)) return `reads the system catalog (${row.nspname}.${row.relname})`;
  if (row.relpersistence === 't') return `reads the temporary relation ${row.relname}`;
  if (row.relkind === 'f') return `reads the foreign table ${row.relname}`;
  if (row.volatile_view) return `the view ${row.relname} calls functions that are not IMMUTABLE`;
  return undefined;
}
