import type { Tag } from './types.js';

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
