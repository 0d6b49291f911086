/**
 * The one reader of Cache-Control (RFC 9111 §5.2, https://www.rfc-editor.org/rfc/rfc9111#section-5.2),
 * for request and response fields alike: it turns the field into directives and says nothing about
 * what they mean (that is `policy.ts`).
 */
import type { IncomingHttpHeaders } from 'node:http';

/** Directive name, lower-case → its argument, or `true` for a directive without one. */
export type Directives = ReadonlyMap<string, string | true>;

const NONE: Directives = new Map();
const PRAGMA_NO_CACHE: Directives = new Map([['no-cache', true]]);

/**
 * Parses a Cache-Control field value. Directive names compare case-insensitively (RFC 9111 §5.2),
 * so they come out lower-case. An argument is a token or a quoted-string (RFC 9110 §5.6.4: quotes
 * removed, backslash escapes undone, a comma inside quotes belongs to the argument). Several fields
 * make one list (RFC 9110 §5.3). When a directive repeats, the last one counts, as in
 * http-cache-semantics, so that its reading of a response and ours agree.
 */
export function parseCacheControl(value: string | readonly string[] | undefined): Directives {
  if (value === undefined) return NONE;
  const text = typeof value === 'string' ? value : value.join(',');
  // An origin mostly sends the same field on every response: the last reading is kept (directives are read-only).
  if (text === last.text) return last.directives;
  const out = new Map<string, string | true>();
  let i = 0;
  while (i < text.length) {
    const comma = endOf(text, ',', i);
    const equals = endOf(text, '=', i);
    const name = text.slice(i, Math.min(comma, equals)).trim().toLowerCase();
    let argument: string | true = true;
    i = comma;
    if (equals < comma) {
      const read = readArgument(text, equals + 1);
      argument = read.argument;
      i = read.end;
    }
    if (name !== '') out.set(name, argument);
    i++;
  }
  last = { text, directives: out };
  return out;
}

/** The last field `parseCacheControl` read, and its directives. */
let last: { text: string; directives: Directives } = { text: '', directives: NONE };

/** Reads a token or quoted-string argument from `start`; `end` is the index of the comma after it (or the length). */
function readArgument(text: string, start: number): { argument: string; end: number } {
  let i = start;
  while (text[i] === ' ' || text[i] === '\t') i++;
  if (text[i] !== '"') {
    const end = endOf(text, ',', i);
    return { argument: text.slice(i, end).trim(), end };
  }
  let argument = '';
  let from = i + 1;
  for (i = from; i < text.length && text[i] !== '"'; i++) {
    if (text[i] !== '\\') continue;
    argument += text.slice(from, i);
    from = ++i;
  }
  argument += text.slice(from, i);
  return { argument, end: endOf(text, ',', i) };
}

/** The index of `char` from `from` on, or the length when there is none. */
function endOf(text: string, char: string, from: number): number {
  const at = text.indexOf(char, from);
  return at === -1 ? text.length : at;
}

/**
 * The Cache-Control directives of a request's or a response's fields. Without Cache-Control,
 * `Pragma: no-cache` counts as `no-cache` (RFC 9111 §5.4 for requests; http-cache-semantics reads
 * responses the same way, and the two readings should agree).
 */
export function directivesOf(headers: IncomingHttpHeaders): Directives {
  const cc: string | readonly string[] | undefined = headers['cache-control'];
  if (cc !== undefined) return parseCacheControl(cc);
  const pragma: string | readonly string[] | undefined = headers.pragma;
  return pragma !== undefined && /no-cache/i.test(String(pragma)) ? PRAGMA_NO_CACHE : NONE;
}
