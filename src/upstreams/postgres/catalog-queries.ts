/**
 * The SQL texts sidecache asks the PostgreSQL catalog: what relations names reach, what a write
 * reaches, which functions, operators and types are not IMMUTABLE, and which names no relation has.
 */

import { CATALOG_TYPES, DATE_TIME_TYPES } from './classify-literals.js';

/**
 * `p` (a pg_proc row) and, for an aggregate, every support function it runs are IMMUTABLE: CREATE
 * AGGREGATE writes 'i' into the aggregate's own row whatever its step or final function is.
 */
const IMMUTABLE = `(p.provolatile = 'i' AND NOT EXISTS (
  SELECT 1 FROM pg_aggregate a JOIN pg_proc s ON s.oid IN (a.aggtransfn::oid, a.aggfinalfn::oid, a.aggcombinefn::oid,
    a.aggserialfn::oid, a.aggdeserialfn::oid, a.aggmtransfn::oid, a.aggminvtransfn::oid, a.aggmfinalfn::oid)
  WHERE a.aggfnoid = p.oid AND s.provolatile <> 'i'))`;

/** How types are built on others: domains on their base, arrays on their element, ranges on their subtype, multiranges on their range, composites on their attributes' types. */
const TYPE_EDGES = `type_edges(parent, child) AS (
  SELECT typbasetype, oid FROM pg_type WHERE typbasetype <> 0
  UNION ALL SELECT typelem, oid FROM pg_type WHERE typelem <> 0
  UNION ALL SELECT rngsubtype, rngtypid FROM pg_range
  -- Multiranges exist from PostgreSQL 14 on: their column is read through to_jsonb so that 13 parses the query too.
  UNION ALL SELECT r.rngtypid, (to_jsonb(r) ->> 'rngmultitypid')::oid FROM pg_range r WHERE to_jsonb(r) ? 'rngmultitypid'
  UNION ALL SELECT a.atttypid, c.reltype FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
  WHERE a.attnum > 0 AND NOT a.attisdropped AND c.reltype <> 0
)`;

/** `cte(oid)`: the pg_catalog types named and every type built on one (a recursive CTE after TYPE_EDGES). */
function builtOn(cte: string, names: Iterable<string>): string {
  return `${cte}(oid) AS (
  SELECT oid FROM pg_type WHERE typnamespace = 'pg_catalog'::regnamespace AND typname IN (${[...names].map((t) => `'${t}'`).join(', ')})
  UNION
  SELECT e.child FROM ${cte} t JOIN type_edges e ON e.parent = t.oid
)`;
}

/**
 * Types whose values are read from the catalog (https://www.postgresql.org/docs/current/datatype-oid.html:
 * their input and output look names up): the reg* types and aclitem, and every type built on one,
 * as `catalog_types(oid)`.
 */
const CATALOG_TYPES_CTE = `${TYPE_EDGES}, ${builtOn('catalog_types', CATALOG_TYPES)}`;

/** `p` (a pg_proc row) takes or returns a type of catalog_types (a literal argument is looked up as a name, a result printed as one); the set is computed once per query. */
const CATALOG_OIDS = '(SELECT array_agg(oid) FROM catalog_types)::oid[]';
const CATALOG_TYPED = `(p.prorettype = ANY (${CATALOG_OIDS}) OR p.proargtypes::oid[] && ${CATALOG_OIDS}
  OR coalesce(p.proallargtypes && ${CATALOG_OIDS}, false))`;

/**
 * Relations reached from the named ones through views' rewrite rules and pg_inherits, with a
 * flag for views that call functions that are not IMMUTABLE.
 */
export const EXPAND = `
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
          WHERE r.ev_class = c.oid AND NOT ${IMMUTABLE}) AS volatile_view
FROM reach JOIN pg_class c ON c.oid = reach.oid JOIN pg_namespace n ON n.oid = c.relnamespace`;

/**
 * What a write to the named relations reaches (https://www.postgresql.org/docs/current/ddl-partitioning.html,
 * https://www.postgresql.org/docs/current/ddl-constraints.html#DDL-CONSTRAINTS-FK): down ('d') to
 * what it changes — partitions and inheritance children, a view's base tables, and tables whose
 * foreign keys cascade, set null or set default (any foreign key for TRUNCATE … CASCADE) — and up
 * ('u') from each of those to what shows its rows: parents and views over it.
 */
export const WRITE_REACH = `
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
  OR EXISTS (SELECT 1 FROM pg_rewrite r WHERE r.ev_class = c.oid AND r.rulename <> '_RETURN')
  -- Column defaults, generated columns, CHECK constraints and row security policies that call user
  -- functions (pg_depend records no dependency on built-ins): code the write runs unseen.
  OR EXISTS (SELECT 1 FROM pg_attrdef ad JOIN pg_depend dp ON dp.classid = 'pg_attrdef'::regclass AND dp.objid = ad.oid
             AND dp.refclassid = 'pg_proc'::regclass WHERE ad.adrelid = c.oid)
  OR EXISTS (SELECT 1 FROM pg_constraint cc JOIN pg_depend dp ON dp.classid = 'pg_constraint'::regclass AND dp.objid = cc.oid
             AND dp.refclassid = 'pg_proc'::regclass WHERE cc.conrelid = c.oid)
  OR EXISTS (SELECT 1 FROM pg_policy po JOIN pg_depend dp ON dp.classid = 'pg_policy'::regclass AND dp.objid = po.oid
             AND dp.refclassid = 'pg_proc'::regclass WHERE po.polrelid = c.oid) AS side_effects
FROM reach JOIN pg_class c ON c.oid = reach.oid`;

/**
 * In one round trip, in the built-ins' columns: functions outside pg_catalog (`kind` f), then the
 * names of operators outside pg_catalog backed by a function that is not IMMUTABLE (o), of types
 * outside pg_catalog whose input function is not IMMUTABLE, and of the targets of casts through
 * such a function (t), of every type whose values are read from the catalog, in any schema (c),
 * and of types outside pg_catalog built on a date/time type (k).
 */
export const USER_OBJECTS = `
WITH RECURSIVE ${CATALOG_TYPES_CTE}, ${builtOn('clock_types', DATE_TIME_TYPES)}
SELECT DISTINCT proname AS name, pronargs - pronargdefaults AS min_args, pronargs AS max_args,
  provariadic <> 0 AS variadic, ${IMMUTABLE} AS immutable, ${CATALOG_TYPED} AS catalog, 'f' AS kind
FROM pg_proc p WHERE pronamespace <> 'pg_catalog'::regnamespace
UNION ALL
SELECT DISTINCT o.oprname, 0, 0, false, false, false, 'o' FROM pg_operator o JOIN pg_proc p ON p.oid = o.oprcode
WHERE o.oprnamespace <> 'pg_catalog'::regnamespace AND p.provolatile <> 'i'
UNION ALL
SELECT DISTINCT t.typname, 0, 0, false, false, false, 't' FROM pg_type t JOIN pg_proc p ON p.oid = t.typinput
WHERE t.typnamespace <> 'pg_catalog'::regnamespace AND t.typtype = 'b' AND t.typcategory <> 'A' AND p.provolatile <> 'i'
UNION ALL
SELECT DISTINCT t.typname, 0, 0, false, false, false, 't' FROM pg_cast c JOIN pg_proc p ON p.oid = c.castfunc JOIN pg_type t ON t.oid = c.casttarget
WHERE p.pronamespace <> 'pg_catalog'::regnamespace AND p.provolatile <> 'i'
UNION ALL
SELECT DISTINCT t.typname, 0, 0, false, false, false, 'c' FROM catalog_types c JOIN pg_type t ON t.oid = c.oid
UNION ALL
SELECT DISTINCT t.typname, 0, 0, false, false, false, 'k' FROM clock_types k JOIN pg_type t ON t.oid = k.oid
WHERE t.typnamespace <> 'pg_catalog'::regnamespace`;

/** Which of the names (`[schema.]name`, compared without case) no relation has. */
export const MISSING = `
SELECT f.i FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS f(schema, name, i)
WHERE NOT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE lower(c.relname) = lower(f.name) AND (f.schema IS NULL OR lower(n.nspname) = lower(f.schema)))`;

/** Every built-in function's name, argument counts and volatility (the same columns on PostgreSQL 13 to 18). */
export const BUILTINS = `
WITH RECURSIVE ${CATALOG_TYPES_CTE}
SELECT DISTINCT proname AS name, pronargs - pronargdefaults AS min_args, pronargs AS max_args,
  provariadic <> 0 AS variadic, ${IMMUTABLE} AS immutable, ${CATALOG_TYPED} AS catalog
FROM pg_proc p WHERE pronamespace = 'pg_catalog'::regnamespace`;

/** Per call (name, argument count): are all overloads it could resolve to, in any schema, IMMUTABLE? Does one take or return a catalog type? */
export const CALLS = `
WITH RECURSIVE ${CATALOG_TYPES_CTE}
SELECT f.i, count(p.oid) > 0 AND bool_and(${IMMUTABLE}) AS immutable, coalesce(bool_or(${CATALOG_TYPED}), false) AS catalog
FROM unnest($1::text[], $2::int[]) WITH ORDINALITY AS f(name, n, i)
LEFT JOIN pg_proc p ON p.proname = f.name
  AND (p.provariadic <> 0 OR f.n BETWEEN p.pronargs - p.pronargdefaults AND p.pronargs)
GROUP BY f.i`;
