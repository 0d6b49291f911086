/**
 * Which calls of a statement run only IMMUTABLE built-in functions, answered from one database's
 * own pg_catalog (https://www.postgresql.org/docs/current/catalog-pg-proc.html), so the answer is
 * the server's whatever its version, functions a newer server adds included. Pure: catalog.ts
 * reads the rows.
 */

/** One built-in overload as pg_proc describes it (rows that differ only in argument types are one). */
export interface ProcRow {
  name: string;
  /** Arguments it needs: `pronargs - pronargdefaults`. */
  min_args: number;
  /** Arguments it takes: `pronargs`. */
  max_args: number;
  /** `VARIADIC`: it may take any number of arguments. */
  variadic: boolean;
  /** `provolatile = 'i'`, and so are its support functions if it is an aggregate. */
  immutable: boolean;
  /** It takes or returns a type whose values are read from the catalog (regclass, regconfig, aclitem, a domain over one, …). */
  catalog: boolean;
}

/** What the built-ins say about a statement's calls. */
export interface CallVerdicts {
  /** Calls that may run a built-in that is not IMMUTABLE. */
  volatile: string[];
  /** Calls of IMMUTABLE functions only, one of which takes or returns a type read from the catalog. */
  catalog: string[];
  /** Calls no built-in answers (user functions, other schemas, functions added since): the catalog is asked about these. */
  unknown: string[];
}

/** The built-in functions (schema pg_catalog) of one database, by name; or, with `builtin` false, those of every other schema. */
export class BuiltinFunctions {
  readonly #byName = new Map<string, ProcRow[]>();
  readonly #builtin: boolean;

  constructor(rows: readonly ProcRow[], builtin = true) {
    this.#builtin = builtin;
    for (const row of rows) {
      const list = this.#byName.get(row.name);
      if (list === undefined) this.#byName.set(row.name, [row]);
      else list.push(row);
    }
  }

  /**
   * Sorts calls (`[schema.]name/n`, unqualified or in pg_catalog) by what the built-ins of that
   * name and argument count are: all IMMUTABLE (left out), some not (`volatile`), all IMMUTABLE but
   * some of catalog types (`catalog`), or none (`unknown`).
   * Overloads are matched by argument count, not types: stricter than the server, never staler.
   */
  sort(calls: readonly string[]): CallVerdicts {
    const verdicts: CallVerdicts = { volatile: [], catalog: [], unknown: [] };
    for (const call of calls) {
      const candidates = this.#candidates(call);
      if (candidates.length === 0) verdicts.unknown.push(call);
      else if (!candidates.every((p) => p.immutable)) verdicts.volatile.push(call);
      else if (candidates.some((p) => p.catalog)) verdicts.catalog.push(call);
    }
    return verdicts;
  }

  #candidates(call: string): ProcRow[] {
    const [qualified, count] = call.split('/');
    const parts = qualified!.split('.');
    if (parts.length > 1 && (parts.at(-2) === 'pg_catalog') !== this.#builtin) return [];
    const n = Number(count);
    return (this.#byName.get(parts.at(-1)!) ?? []).filter((p) => p.variadic || (n >= p.min_args && n <= p.max_args));
  }
}
