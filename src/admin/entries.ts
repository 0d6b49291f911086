/**
 * `GET /cache/entries`: what the store holds, entry by entry, with the key read back by its
 * protocol (server.ts hands in `describeKey`). Bounded: at most `MAX_LIMIT` entries answered, and
 * the scan reads the store's keys in slices of `SLICE` with the event loop free between them, so
 * a large store delays requests by one slice at a time, never by the whole scan.
 */
import type { Store } from '../cache/store.js';
import type { Entry } from '../cache/types.js';
import type { Clock } from '../clock.js';

/** A key read back for people; `protocol` and `listener` always, the rest per protocol. */
export interface KeyDescription {
  protocol: 'http' | 'postgres';
  listener: string;
  /** HTTP: the URL (path, and query with reveal). */
  url?: string;
  /** PostgreSQL: the SQL text (literals hidden without reveal). */
  sql?: string;
}

export type DescribeKey = (key: string, reveal: boolean) => KeyDescription | undefined;

export const DEFAULT_LIMIT = 100;
export const MAX_LIMIT = 1000;
/** Entries read between two turns of the event loop. */
const SLICE = 1000;

export type EntrySort = 'hits' | 'bytes' | 'age';

export interface EntryQuery {
  protocol?: string;
  listener?: string;
  /** HTTP: the start of the path; PostgreSQL: the start of the SQL text (as shown: without reveal, matched against the redacted text). */
  prefix?: string;
  tag?: string;
  sort: EntrySort;
  limit: number;
  reveal: boolean;
}

export interface EntryRow {
  key: KeyDescription;
  tags: string[];
  bytes: number;
  ageSeconds: number;
  /** Seconds of freshness left; negative once stale (served only within its stale window). */
  ttlSeconds: number;
  hits: number;
}

/** Reads `?protocol=&listener=&prefix=&tag=&sort=&limit=&reveal=`; a string is the reason it is refused. */
export function parseEntryQuery(params: URLSearchParams): EntryQuery | string {
  const sort = params.get('sort') ?? 'hits';
  if (sort !== 'hits' && sort !== 'bytes' && sort !== 'age') return `expected sort to be hits, bytes or age, got ${JSON.stringify(sort)}`;
  const limitText = params.get('limit') ?? String(DEFAULT_LIMIT);
  const limit = Number(limitText);
  if (!/^\d+$/.test(limitText) || limit < 1 || limit > MAX_LIMIT)
    return `expected limit to be an integer from 1 to ${MAX_LIMIT}, got ${JSON.stringify(limitText)}`;
  const optional = (name: string) => params.get(name) ?? undefined;
  return {
    protocol: optional('protocol'),
    listener: optional('listener'),
    prefix: optional('prefix'),
    tag: optional('tag'),
    sort,
    limit,
    reveal: params.get('reveal') === '1',
  };
}

/** The top `query.limit` entries by `query.sort` among those the filters keep; `scanned` counts the entries read. */
export async function listEntries(
  store: Store,
  clock: Clock,
  describe: DescribeKey,
  query: EntryQuery,
): Promise<{ entries: EntryRow[]; matched: number; scanned: number }> {
  const keys = store.keys();
  const score = scoreOf(query.sort, clock.now());
  let top: { entry: Entry; key: KeyDescription; score: number }[] = [];
  let matched = 0;
  for (let at = 0; at < keys.length; at += SLICE) {
    if (at > 0) await new Promise((resolve) => setImmediate(resolve));
    for (const storeKey of keys.slice(at, at + SLICE)) {
      const entry = store.peek(storeKey);
      // Tags are matched as shown: a hidden query cannot be guessed through the filter.
      if (entry === undefined || (query.tag !== undefined && !entry.tags.some((t) => shownTag(t, query.reveal)[0] === query.tag))) continue;
      const key = describe(storeKey, query.reveal);
      if (key === undefined || !keeps(query, key)) continue;
      matched++;
      top.push({ entry, key, score: score(entry) });
      if (top.length >= query.limit * 2) top = best(top, query.limit);
    }
  }
  const now = clock.now();
  const entries = best(top, query.limit).map(({ entry, key }) => ({
    key,
    tags: entry.tags.flatMap((t) => shownTag(t, query.reveal)),
    bytes: entry.bytes,
    ageSeconds: Math.round((now - entry.storedAt) / 1000),
    ttlSeconds: Math.round((entry.freshUntil - now) / 1000),
    hits: entry.hits,
  }));
  return { entries, matched, scanned: keys.length };
}

function keeps(query: EntryQuery, key: KeyDescription): boolean {
  if (query.protocol !== undefined && key.protocol !== query.protocol) return false;
  if (query.listener !== undefined && key.listener !== query.listener) return false;
  if (query.prefix === undefined) return true;
  const text = key.protocol === 'http' ? key.url : key.sql;
  return text?.startsWith(query.prefix) === true;
}

function scoreOf(sort: EntrySort, now: number): (entry: Entry) => number {
  if (sort === 'bytes') return (e) => e.bytes;
  if (sort === 'age') return (e) => now - e.storedAt;
  return (e) => e.hits;
}

function best<T extends { score: number }>(rows: T[], limit: number): T[] {
  return rows.sort((a, b) => b.score - a.score).slice(0, limit);
}

/**
 * Tags as people read them. Derived tags start with NUL (`cache/tags.ts`) and are shown without
 * it, their parts joined by a space (`url:api /users/1`, `pgdb:app`); a URL tag's query is hidden
 * without reveal. Generation tags of single keys are not on entries.
 */
export function shownTag(tag: string, reveal: boolean): string[] {
  if (!tag.startsWith('\u0000')) return [tag];
  let text = tag.slice(1).replaceAll('\u0000', ' ');
  if (!reveal && text.startsWith('url:')) {
    const q = text.indexOf('?');
    if (q !== -1) text = text.slice(0, q);
  }
  return [text];
}
