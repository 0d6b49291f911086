/**
 * A SQL text's shape: the text with its numeric and string constants replaced by placeholders,
 * found by a cheap scan, so statements that differ only in constants share one parse and one plan.
 * The scan follows PostgreSQL's lexer for the few tokens it replaces
 * (https://www.postgresql.org/docs/current/sql-syntax-lexical.html#SQL-SYNTAX-CONSTANTS) and gives
 * up (undefined: the text is parsed on its own) on anything it does not model: comments, dollar
 * quotes and parameters, escape/bit/Unicode strings, backslashes, adjacent strings (which the lexer
 * joins into one constant), non-ASCII or control characters outside strings, and any constant the
 * classification or the session analysis reads (a date/time word such as 'now', `pg_temp`).
 *
 * What a statement's classification takes from its constants is only whether one holds such a
 * word (classify-walk.ts, session-effects.ts); everything else comes from the tokens the shape
 * keeps verbatim. Which classifications are shared is the planner's choice (isSharedByShape).
 */
import { TIME_WORD } from './classify-literals.js';

/** Stands for a numeric constant in a shape (never in a text that has a shape). */
const NUMBER = '\u0001';
/** Stands for a string constant's content in a shape. */
const STRING = '\u0002';

const QUOTE = 0x27;
const DOUBLE_QUOTE = 0x22;

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** Letters, digits, `_` and `$` continue an identifier (or make a prefix such as E'', B'', U&''). */
function isWordChar(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || isDigit(c) || c === 0x5f || c === 0x24;
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0x0c;
}

/** The end of a numeric constant starting at `i` (digits, fraction, exponent); -1 when it runs into something else. */
function numberEnd(sql: string, i: number): number {
  let j = i;
  while (isDigit(sql.charCodeAt(j))) j++;
  if (sql.charCodeAt(j) === 0x2e) {
    j++;
    while (isDigit(sql.charCodeAt(j))) j++;
  }
  const e = sql.charCodeAt(j);
  if (e === 0x65 || e === 0x45) {
    let k = j + 1;
    const sign = sql.charCodeAt(k);
    if (sign === 0x2b || sign === 0x2d) k++;
    if (!isDigit(sql.charCodeAt(k))) return -1;
    while (isDigit(sql.charCodeAt(k))) k++;
    j = k;
  }
  // `1abc`, `0x1F`, `1_000`, `1.2.3`: not a plain constant.
  const next = sql.charCodeAt(j);
  return isWordChar(next) || next === 0x2e ? -1 : j;
}

/** The end (after the closing quote) of a standard string constant whose opening quote is at `i`; -1 when unterminated. */
function stringEnd(sql: string, i: number): number {
  let j = i + 1;
  for (;;) {
    const q = sql.indexOf("'", j);
    if (q === -1) return -1;
    if (sql.charCodeAt(q + 1) !== QUOTE) return q + 1;
    j = q + 2;
  }
}

/**
 * A string constant whose words the classification or the session analysis reads: a date/time
 * word, or `pg_temp` (a name part in option lists, which the parser keeps as strings).
 */
function isRead(content: string): boolean {
  return TIME_WORD.test(content) || /pg_temp/i.test(content);
}

/** The shape of `sql`, or undefined when the scan cannot vouch for it (see the module comment). */
export function sqlShape(sql: string): string | undefined {
  let out = '';
  let from = 0;
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c === QUOTE) {
      if (i > 0 && isWordChar(sql.charCodeAt(i - 1))) return undefined;
      const end = stringEnd(sql, i);
      if (end === -1) return undefined;
      const content = sql.slice(i + 1, end - 1);
      if (content.includes('\\') || isRead(content.replaceAll("''", "'"))) return undefined;
      // 'a' 'b' across a newline is one constant 'ab' to the lexer: its words are not the pieces'.
      let k = end;
      while (isSpace(sql.charCodeAt(k))) k++;
      if (sql.charCodeAt(k) === QUOTE) return undefined;
      out += sql.slice(from, i + 1) + STRING;
      from = end - 1;
      i = end;
      continue;
    }
    if (c === DOUBLE_QUOTE) {
      // A quoted identifier is kept verbatim; U&"…" has `&` before it, refused below.
      if (i > 0 && isWordChar(sql.charCodeAt(i - 1))) return undefined;
      let j = i + 1;
      for (;;) {
        const q = sql.indexOf('"', j);
        if (q === -1) return undefined;
        if (sql.charCodeAt(q + 1) !== DOUBLE_QUOTE) {
          j = q + 1;
          break;
        }
        j = q + 2;
      }
      i = j;
      continue;
    }
    if (isDigit(c) && (i === 0 || !(isWordChar(sql.charCodeAt(i - 1)) || sql.charCodeAt(i - 1) === 0x2e))) {
      const end = numberEnd(sql, i);
      if (end === -1) return undefined;
      out += sql.slice(from, i) + NUMBER;
      from = end;
      i = end;
      continue;
    }
    // Comments, dollar quotes and $n, backslashes, U&, non-ASCII and control characters: not modelled.
    if (c === 0x2d && sql.charCodeAt(i + 1) === 0x2d) return undefined;
    if (c === 0x2f && sql.charCodeAt(i + 1) === 0x2a) return undefined;
    if (c === 0x24 || c === 0x5c || c === 0x26 || c > 0x7e || (c < 0x20 && !isSpace(c))) return undefined;
    i++;
  }
  return out + sql.slice(from);
}
