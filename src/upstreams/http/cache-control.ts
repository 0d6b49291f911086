/**
 * The one reader of Cache-Control (RFC 9111 §5.2, https://www.rfc-editor.org/rfc/rfc9111#section-5.2),
 * for request and response fields alike: it turns the field into directives and says nothing about
 * what they mean (that is `policy.ts`).
 */
import type { IncomingHttpHeaders } from 'node:http';

/** Directive name, lower-case → its argument, or `true` for a directive without one. */
export type Directives = Readonly<Record<string, string | true>>;

/** No prototype, so a directive named like an Object method reads as absent. */
function emptyDirectives(): Record<string, string | true> {
  return Object.create(null) as Record<string, string | true>;
}

const NONE: Directives = Object.freeze(emptyDirectives());
const PRAGMA_NO_CACHE: Directives = Object.freeze(Object.assign(emptyDirectives(), { 'no-cache': true as const }));

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
  const out = emptyDirectives();
  let i = 0;
  while (i < text.length) {
    const nameEnd = indexOfAny(text, i, ',=');
    const name = text.slice(i, nameEnd).trim().toLowerCase();
    i = nameEnd;
    let argument: string | true = true;
    if (text[i] === '=') {
      const read = readArgument(text, i + 1);
      argument = read.argument;
      i = read.end;
    }
    if (name !== '') out[name] = argument;
    i++;
  }
  return out;
}

/** Reads a token or quoted-string argument from `start`; `end` is the index of the comma after it (or the length). */
function readArgument(text: string, start: number): { argument: string; end: number } {
  let i = start;
  while (text[i] === ' ' || text[i] === '\t') i++;
  if (text[i] !== '"') {
    const end = indexOfAny(text, i, ',');
    return { argument: text.slice(i, end).trim(), end };
  }
  let argument = '';
  for (i++; i < text.length && text[i] !== '"'; i++) {
    if (text[i] === '\\' && i + 1 < text.length) i++;
    argument += text[i];
  }
  return { argument, end: indexOfAny(text, i, ',') };
}

function indexOfAny(text: string, from: number, chars: string): number {
  let i = from;
  while (i < text.length && !chars.includes(text[i]!)) i++;
  return i;
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
