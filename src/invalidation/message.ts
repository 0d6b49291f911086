import { normalizeTarget } from '../cache/paths.js';
import { tableTag } from '../cache/tags.js';
import type { InvalidationTarget } from '../cache/types.js';
import { SidecacheError } from '../errors.js';

/** The invalidation message contract (docs/contracts.md "Invalidation messages"); every field is optional. */
export interface InvalidationMessage {
  tags?: string[];
  tables?: string[];
  keys?: string[];
  prefixes?: string[];
  all?: boolean;
  /** The instance that decided the invalidation and published it (its own echo is recognised and skipped). */
  origin?: string;
}

const LIST_FIELDS = ['tags', 'tables', 'keys', 'prefixes'] as const;
const FIELDS = new Set<string>([...LIST_FIELDS, 'all', 'origin']);
/** An origin is an instance id, not a payload: longer ones are refused. */
const MAX_ORIGIN_CHARS = 200;

/** The contract nests two deep (an object of lists of strings); deeper JSON is refused before it is parsed. */
const MAX_DEPTH = 2;
/** How much of an offending value an error quotes: a reason must not carry a whole payload into a log line. */
const EXCERPT_CHARS = 120;

/**
 * A message refused by the contract. `reason` names the rule it broke without quoting the payload,
 * so warnings can be rate-limited per reason (a stream of distinct bad payloads is one reason).
 */
export class InvalidationMessageError extends SidecacheError {
  readonly reason: string;

  constructor(reason: string, message: string) {
    super('SC_ERR_INVALIDATION_MESSAGE', `invalid invalidation message: ${message}`);
    this.reason = reason;
  }
}

/**
 * Reads a payload as it arrives on a bus or at `POST /invalidate`. A payload that starts with
 * `{` (or `[`) must be a valid JSON message; anything else is a comma-separated list of table
 * names, so `NOTIFY sidecache, 'accounts,orders'` works. Unknown fields are refused: a typo such
 * as `tag` must not turn a purge into a silent no-op.
 */
export function parseInvalidation(payload: string): InvalidationTarget {
  return readInvalidation(payload).target;
}

/** `parseInvalidation`, with the `origin` the message names (undefined for a table list or a message without one). */
export function readInvalidation(payload: string): { target: InvalidationTarget; origin: string | undefined } {
  const text = payload.trim();
  if (text === '') throw invalid('the message is empty');
  if (text.startsWith('{') || text.startsWith('[')) {
    const message = parseJson(text);
    const target = toTarget(message);
    return { target, origin: (message as InvalidationMessage).origin };
  }
  const tables = text.split(',').map((t) => t.trim());
  if (tables.some((t) => t === '')) throw invalid('not a list of table names', `expected a comma-separated list of table names, got ${excerpt(text)}`);
  return { target: { tags: tables.map(tableTag) }, origin: undefined };
}

/** Checks a decoded message against the contract and turns `tables` into `table:` tags. */
export function toTarget(message: unknown): InvalidationTarget {
  if (message === null || typeof message !== 'object' || Array.isArray(message)) {
    throw invalid('not an object', `expected a JSON object, got ${Array.isArray(message) ? 'an array' : excerpt(message)}`);
  }
  const fields = message as Record<string, unknown>;
  const unknown = Object.keys(fields).filter((k) => !FIELDS.has(k));
  if (unknown.length > 0)
    throw invalid(
      'unknown field',
      `unknown field ${excerpt(unknown.map((k) => JSON.stringify(k)).join(', '), false)} (known: tags, tables, keys, prefixes, all, origin)`,
    );
  for (const field of LIST_FIELDS) {
    const list = fields[field];
    if (list === undefined) continue;
    if (!Array.isArray(list) || list.some((v) => typeof v !== 'string' || v === '')) {
      throw invalid(`${field} not a list of strings`, `expected ${field} to be a list of non-empty strings, got ${excerpt(list)}`);
    }
  }
  if (fields.all !== undefined && typeof fields.all !== 'boolean')
    throw invalid('all not a boolean', `expected all to be true or false, got ${excerpt(fields.all)}`);
  const origin = fields.origin;
  if (origin !== undefined && (typeof origin !== 'string' || origin === '' || origin.length > MAX_ORIGIN_CHARS))
    throw invalid('origin not an instance id', `expected origin to be a string of 1 to ${MAX_ORIGIN_CHARS} characters, got ${excerpt(origin)}`);
  const msg = fields as InvalidationMessage;
  return {
    tags: [...(msg.tags ?? []), ...(msg.tables ?? []).map(tableTag)],
    keys: msg.keys ?? [],
    prefixes: (msg.prefixes ?? []).map(normalPrefix),
    all: msg.all === true,
  };
}

/**
 * A prefix in the normal form HTTP entries are stored under (`cache/paths.ts`), so `/%75sers/`
 * reaches `/users/1`. A prefix that is not a well-formed path is refused rather than matched
 * as sent: it would match nothing and the purge would be silently lost.
 */
function normalPrefix(prefix: string): string {
  if (!prefix.startsWith('/')) throw invalid('prefix not a path', `expected each prefix to start with "/", got ${excerpt(prefix)}`);
  const normal = normalizeTarget(prefix);
  if (normal === undefined) throw invalid('prefix not a path', `expected each prefix to be a path (a "%" followed by two hex digits), got ${excerpt(prefix)}`);
  return normal;
}

function parseJson(text: string): unknown {
  if (nestedDeeperThan(text, MAX_DEPTH)) throw invalid('nested too deep', `expected at most ${MAX_DEPTH} levels of nesting (an object of lists of strings)`);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw invalid('malformed JSON', `malformed JSON: ${excerpt((err as Error).message, false)}`);
  }
}

/**
 * Whether JSON text opens more than `max` arrays or objects at once, read without parsing: a
 * payload of 10,000 nested arrays is small, and parsing or quoting it is what must not happen.
 * Brackets inside strings do not count; malformed text is left for JSON.parse to refuse.
 */
export function nestedDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/**
 * A short quote of a value for an error text: never more than EXCERPT_CHARS, and never a throw (a
 * list is quoted from its first elements; the depth check above keeps JSON.stringify shallow).
 */
function excerpt(value: unknown, quote = true): string {
  let text: string;
  try {
    if (typeof value === 'string') text = quote ? JSON.stringify(value.slice(0, EXCERPT_CHARS + 1)) : value;
    else if (Array.isArray(value)) text = JSON.stringify(value.slice(0, 10)).slice(0, -1) + (value.length > 10 ? ',…]' : ']');
    else text = JSON.stringify(value) ?? String(value);
  } catch {
    text = 'a value that cannot be quoted';
  }
  return text.length > EXCERPT_CHARS ? `${text.slice(0, EXCERPT_CHARS)}…` : text;
}

function invalid(reason: string, message: string = reason): InvalidationMessageError {
  return new InvalidationMessageError(reason, message);
}
