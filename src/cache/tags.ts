/**
 * The tag vocabulary: every tag sidecache derives by itself is built here, so the names two
 * protocols share (a table written over the Postgres wire and named in a bus message, a URL and
 * its prefixes) are spelled in one place. Tags users send (`Surrogate-Key`, `tags` in a message)
 * are taken as they are; derived tags that users must not be able to name start with a NUL.
 * See docs/contracts.md, "Tags".
 */
import type { CacheKey, Tag } from './types.js';

/** `public."Accounts"` → `table:accounts`: lower-cased, without schema (over-invalidating is safe). */
export function tableTag(name: string): Tag {
  const bare = name.trim().split('.').pop() ?? '';
  return `table:${bare.replace(/^"|"$/g, '').toLowerCase()}`;
}

/** The tag every entry of one database carries, for statements that may change anything in it. */
export function databaseTag(database: string): Tag {
  return `\u0000pgdb:${database}`;
}

/**
 * The tag every Postgres entry of one server (`host:port` of the upstream) carries, for statements
 * that change results in all its databases (roles, role membership, databases).
 */
export function clusterTag(cluster: string): Tag {
  return `\u0000pgcluster:${cluster}`;
}

/** The tag every variant of one URL carries, so PURGE and unsafe methods reach them all. */
export function urlTag(listener: string, path: string): Tag {
  return `\u0000url:${listener}\u0000${path}`;
}

/** The tag every entry of one gateway route carries (`http[].routes[]`), so a reload that removes the route drops them. */
export function routeTag(namespace: string): Tag {
  return `\u0000route:${namespace}`;
}

/** The generation tag of one key, so a `keys` invalidation stops a fill of that key in flight. */
export function keyTag(key: CacheKey): Tag {
  return `\u0000key:${key}`;
}

/**
 * Path prefixes are served by the tag index: an entry for `/users/42/posts?page=2` carries one
 * tag per directory of its path (`path:/`, `path:/users/`, `path:/users/42/`). A prefix
 * invalidation looks up the tag of the deepest directory inside the prefix and keeps the entries
 * whose path starts with the prefix, so its cost follows the entries under that directory, not
 * the size of the cache.
 */
const PATH_TAG = 'path:';

export function pathTags(path: string): Tag[] {
  const query = path.indexOf('?');
  const end = query === -1 ? path.length : query;
  const tags: Tag[] = [];
  for (let i = path.indexOf('/'); i !== -1 && i < end; i = path.indexOf('/', i + 1)) {
    tags.push(PATH_TAG + path.slice(0, i + 1));
  }
  return tags;
}

/** The directory tag that covers every entry a prefix can match, or undefined if none can. */
export function prefixTag(prefix: string): Tag | undefined {
  if (!prefix.startsWith('/')) return undefined;
  const query = prefix.indexOf('?');
  const head = query === -1 ? prefix : prefix.slice(0, query);
  return PATH_TAG + head.slice(0, head.lastIndexOf('/') + 1);
}
