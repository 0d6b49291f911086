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
}

const LIST_FIELDS = ['tags', 'tables', 'keys', 'prefixes'] as const;
const FIELDS = new Set<string>([...LIST_FIELDS, 'all']);

/**
 * Reads a payload as it arrives on a bus or at `POST /invalidate`. A payload that starts with
 * `{` (or `[`) must be a valid JSON message; anything else is a comma-separated list of table
 * names, so `NOTIFY sidecache, 'accounts,orders'` works. Unknown fields are refused: a typo such
 * as `tag` must not turn a purge into a silent no-op.
 */
export function parseInvalidation(payload: string): InvalidationTarget {
  const text = payload.trim();
  if (text === '') throw invalid('the message is empty');
  if (text.startsWith('{') || text.startsWith('[')) return toTarget(parseJson(text));
  const tables = text.split(',').map((t) => t.trim());
  if (tables.some((t) => t === '')) throw invalid(`expected a comma-separated list of table names, got ${JSON.stringify(text)}`);
  return { tags: tables.map(tableTag) };
}

/** Checks a decoded message against the contract and turns `tables` into `table:` tags. */
export function toTarget(message: unknown): InvalidationTarget {
  if (message === null || typeof message !== 'object' || Array.isArray(message)) {
    throw invalid(`expected a JSON object, got ${Array.isArray(message) ? 'an array' : JSON.stringify(message)}`);
  }
  const fields = message as Record<string, unknown>;
  const unknown = Object.keys(fields).filter((k) => !FIELDS.has(k));
  if (unknown.length > 0) throw invalid(`unknown field ${unknown.map((k) => JSON.stringify(k)).join(', ')} (known: tags, tables, keys, prefixes, all)`);
  for (const field of LIST_FIELDS) {
    const list = fields[field];
    if (list === undefined) continue;
    if (!Array.isArray(list) || list.some((v) => typeof v !== 'string' || v === '')) {
      throw invalid(`expected ${field} to be a list of non-empty strings, got ${JSON.stringify(list)}`);
    }
  }
  if (fields.all !== undefined && typeof fields.all !== 'boolean') throw invalid(`expected all to be true or false, got ${JSON.stringify(fields.all)}`);
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
  if (!prefix.startsWith('/')) throw invalid(`expected each prefix to start with "/", got ${JSON.stringify(prefix)}`);
  const normal = normalizeTarget(prefix);
  if (normal === undefined) throw invalid(`expected each prefix to be a path (a "%" followed by two hex digits), got ${JSON.stringify(prefix)}`);
  return normal;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw invalid(`malformed JSON: ${(err as Error).message}`);
  }
}

function invalid(reason: string): SidecacheError {
  return new SidecacheError('SC_ERR_INVALIDATION_MESSAGE', `invalid invalidation message: ${reason}`);
}
