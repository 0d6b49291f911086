/**
 * The response fields that freshness is computed from, read strictly: HTTP-dates (RFC 9110
 * §5.6.7), `Age` (RFC 9111 §5.1), the current age (RFC 9111 §4.2.3), and the view of a response
 * http-cache-semantics is given, so that its reading and ours agree (directive names lower-case,
 * repeated fields joined, invalid dates replaced by what they mean).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Millis } from '../../units.js';
import { type Directives, directivesOf } from './cache-control.js';

const DAYS = '(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)';
const LONG_DAYS = '(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)';
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const MONTH = `(${MONTHS.join('|')})`;
const TIME = '(\\d\\d):(\\d\\d):(\\d\\d)';
const IMF_FIXDATE = new RegExp(`^${DAYS}, (\\d\\d) ${MONTH} (\\d{4}) ${TIME} GMT$`);
const RFC850_DATE = new RegExp(`^${LONG_DAYS}, (\\d\\d)-${MONTH}-(\\d\\d) ${TIME} GMT$`);
const ASCTIME_DATE = new RegExp(`^${DAYS} ${MONTH} ([ \\d]\\d) ${TIME} (\\d{4})$`);

/** The last IMF-fixdate `parseHttpDate` read and what it means (it does not depend on `now`). */
let lastFixdate: { text: string | undefined; at: Millis | undefined } = { text: undefined, at: undefined };

/** A date past any response's: what an invalid `Expires` means ("already expired", RFC 9111 §5.3). */
const EXPIRED = 'Thu, 01 Jan 1970 00:00:00 GMT';

/**
 * An HTTP-date (RFC 9110 §5.6.7, https://www.rfc-editor.org/rfc/rfc9110#section-5.6.7): IMF-fixdate,
 * or the obsolete RFC 850 and asctime forms; anything else (ISO dates, numeric zones, "0") is
 * undefined. An RFC 850 two-digit year more than 50 years after `now` is the past century's.
 */
export function parseHttpDate(value: string, now: Millis): Millis | undefined {
  const text = value.trim();
  // An origin's Date changes once a second: the last IMF-fixdate read is read again (no regex, no Date).
  if (text === lastFixdate.text) return lastFixdate.at;
  let m = IMF_FIXDATE.exec(text);
  if (m !== null) {
    const at = utc(Number(m[3]), m[2]!, Number(m[1]), m[4]!, m[5]!, m[6]!);
    lastFixdate = { text, at };
    return at;
  }
  m = ASCTIME_DATE.exec(text);
  if (m !== null) return utc(Number(m[6]), m[1]!, Number(m[2]!.trim()), m[3]!, m[4]!, m[5]!);
  m = RFC850_DATE.exec(text);
  if (m === null) return undefined;
  const thisYear = new Date(now).getUTCFullYear();
  let year = Math.floor(thisYear / 100) * 100 + Number(m[3]);
  if (year > thisYear + 50) year -= 100;
  return utc(year, m[2]!, Number(m[1]), m[4]!, m[5]!, m[6]!);
}

function utc(year: number, month: string, day: number, h: string, min: string, s: string): Millis | undefined {
  const at = Date.UTC(year, MONTHS.indexOf(month), day, Number(h), Number(min), Number(s));
  // Date.UTC rolls 31 Feb over into March: such a date is not a date.
  return new Date(at).getUTCDate() === day && Number(h) < 24 && Number(min) < 60 && Number(s) < 61 ? at : undefined;
}

/** One value of a field that may occur once; repeated, it is invalid (undefined). */
function single(value: string | string[] | undefined): string | undefined {
  if (!Array.isArray(value)) return value;
  return value.length === 1 ? value[0] : undefined;
}

/**
 * `Age` (RFC 9111 §5.1): delta-seconds, digits only. A negative, fractional or otherwise invalid
 * value is ignored (undefined); with several, the largest valid one counts (the older reading).
 */
export function parseAge(value: string | string[] | undefined): number | undefined {
  const values = value === undefined ? [] : Array.isArray(value) ? value : value.split(',');
  let age: number | undefined;
  for (const v of values) {
    const text = v.trim();
    if (/^\d+$/.test(text)) age = Math.max(age ?? 0, Math.min(Number(text), 2 ** 31));
  }
  return age;
}

/**
 * The age of a response when it arrived, in seconds: RFC 9111 §4.2.3
 * (https://www.rfc-editor.org/rfc/rfc9111#section-4.2.3), `corrected_initial_age`, the larger of
 * the apparent age (how long ago its `Date` says it was made) and the `Age` it carried plus the
 * time the request took. The apparent age counts whole seconds, `Date`'s resolution.
 */
export function initialAgeSeconds(headers: IncomingHttpHeaders, requestTime: Millis, responseTime: Millis): number {
  const dateText = single(headers.date);
  const date = dateText === undefined ? undefined : parseHttpDate(dateText, responseTime);
  const apparentAge = date === undefined ? 0 : Math.max(0, Math.floor((responseTime - date) / 1000));
  const responseDelay = Math.max(0, responseTime - requestTime) / 1000;
  const correctedAgeValue = (parseAge(headers.age) ?? 0) + responseDelay;
  return Math.max(apparentAge, correctedAgeValue);
}

/** Serializes directives as one Cache-Control value, names lower-case (quoted arguments escaped). */
export function formatDirectives(directives: Directives): string {
  // The same directives as last time (`parseCacheControl` hands out its last reading again): the same text.
  if (directives === lastFormatted.directives) return lastFormatted.text;
  const parts: string[] = [];
  for (const [name, argument] of directives) {
    if (argument === true) parts.push(name);
    else if (/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(argument)) parts.push(`${name}=${argument}`);
    else parts.push(`${name}="${argument.replace(/["\\]/g, '\\$&')}"`);
  }
  const text = parts.join(', ');
  lastFormatted = { directives, text };
  return text;
}

/** The last directives `formatDirectives` wrote, and how. */
let lastFormatted: { directives: Directives | undefined; text: string } = { directives: undefined, text: '' };

/**
 * A request's fields as http-cache-semantics is given them: its Cache-Control with lower-case
 * directive names (the library compares them case-sensitively; RFC 9111 §5.2 does not).
 */
export function requestView(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  if (headers['cache-control'] === undefined) return headers;
  return { ...headers, 'cache-control': formatDirectives(directivesOf(headers)) };
}

/**
 * A response's fields as http-cache-semantics is given them, which then reads what we read:
 * Cache-Control is `directives` (the field this cache obeys, names lower-case, several fields one
 * list; the library throws on a repeated field and misses `Max-Age`); Pragma is folded into it;
 * `Expires` is a valid HTTP-date or already expired, and is dropped when a targeted field stands
 * in for Cache-Control (RFC 9213 §2.2); `Date` is a valid HTTP-date or absent; `Age` is left out
 * (the current age is ours, `initialAgeSeconds`); repeated single fields are taken once.
 */
export function responseView(headers: IncomingHttpHeaders, directives: Directives, targeted: boolean, now: Millis): IncomingHttpHeaders {
  // Built field by field rather than spread and trimmed with `delete` (a dictionary object for V8, slower to build and read).
  const view: IncomingHttpHeaders = {};
  for (const name in headers) {
    if (VIEW_REPLACED.has(name)) continue;
    const value = headers[name];
    view[name] = Array.isArray(value) && VIEW_SINGLE.has(name) ? value[0] : value;
  }
  if (directives.size > 0) view['cache-control'] = formatDirectives(directives);
  if (!targeted && headers.expires !== undefined) view.expires = normalDate(single(headers.expires), now) ?? EXPIRED;
  const date = normalDate(single(headers.date), now);
  if (date !== undefined) view.date = date;
  if (headers.vary !== undefined) view.vary = Array.isArray(headers.vary) ? headers.vary.join(', ') : headers.vary;
  return view;
}

/** The fields `responseView` leaves out or writes itself. */
const VIEW_REPLACED = new Set(['cache-control', 'pragma', 'age', 'expires', 'date', 'vary']);
/** Single fields taken once when repeated. */
const VIEW_SINGLE = new Set(['etag', 'last-modified']);

function normalDate(value: string | undefined, now: Millis): string | undefined {
  const at = value === undefined ? undefined : parseHttpDate(value, now);
  if (at === undefined) return undefined;
  // The same instant as last time (an origin's Date within one second): the same text.
  if (at !== lastNormal.at) lastNormal = { at, text: new Date(at).toUTCString() };
  return lastNormal.text;
}

/** The last instant `normalDate` wrote, and how. */
let lastNormal: { at: Millis; text: string } = { at: NaN, text: '' };
