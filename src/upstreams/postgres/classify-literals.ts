/**
 * Constants that depend on more than the statement: string constants a date/time type reads as the
 * current time, and casts to types whose input reads the catalog.
 */
import { type Node, names } from './parse-tree.js';

/**
 * A string constant with one of these words may be read as the current time by any date/time type
 * (arrays and ranges included). The input reads a run of letters as one field and skips other
 * characters (ParseDateTime in src/backend/utils/adt/datetime.c): 'now_', '_now' and 'today12:00'
 * read the clock, so a word ends at a non-letter, not at \b (digits and `_` are word characters).
 */
export const TIME_WORD = /(?<![a-z])(now|today|tomorrow|yesterday)(?![a-z])/i;
export const TIME_SVF = /^SVFOP_(CURRENT_DATE|CURRENT_TIME|LOCALTIME)/;
/** Types a constant may be cast to without being read as a time. */
const TEXT_TYPES = new Set(['text', 'varchar', 'bpchar', 'char', 'name', 'citext', 'json', 'jsonb', 'bytea']);
/** Types whose input reads the catalog (a name's OID changes with DDL): https://www.postgresql.org/docs/current/datatype-oid.html */
export const CATALOG_TYPES = new Set([
  'regclass',
  'regcollation',
  'regconfig',
  'regdictionary',
  'regnamespace',
  'regoper',
  'regoperator',
  'regproc',
  'regprocedure',
  'regrole',
  'regtype',
  'aclitem',
]);
/**
 * Date/time types (their arrays and ranges by name too), whose input reads the clock for 'now',
 * 'today', …: https://www.postgresql.org/docs/current/datatype-datetime.html#DATATYPE-DATETIME-SPECIAL-VALUES
 */
export const DATE_TIME_TYPES = ['timestamp', 'timestamptz', 'date', 'time', 'timetz'];
const CLOCK_TYPES = new Set(
  [...DATE_TIME_TYPES, 'tsrange', 'tstzrange', 'daterange', 'tsmultirange', 'tstzmultirange', 'datemultirange'].flatMap((t) => [t, `_${t}`]),
);
export function isClockType(typeName: unknown): boolean {
  return CLOCK_TYPES.has(names((typeName as Node | undefined)?.names).at(-1) ?? '');
}

/** A cast of a constant or a parameter (whose values are checked for time words), through other casts: not of a computed value. */
export function castsConstant(cast: Node): boolean {
  let arg = cast.arg as Node | undefined;
  while (arg?.TypeCast !== undefined) arg = (arg.TypeCast as Node).arg as Node | undefined;
  return arg?.A_Const !== undefined || arg?.ParamRef !== undefined;
}

export function isTextType(typeName: unknown): boolean {
  const t = typeName as Node | undefined;
  return t !== undefined && t.arrayBounds === undefined && TEXT_TYPES.has(names(t.names).at(-1) ?? '');
}

/** The string constant at the bottom of a chain of casts, or ''. */
export function innermostString(cast: Node): string {
  let arg = cast.arg as Node | undefined;
  while (arg?.TypeCast !== undefined) arg = (arg.TypeCast as Node).arg as Node | undefined;
  return String(((arg?.A_Const as Node | undefined)?.sval as Node | undefined)?.sval ?? '');
}
