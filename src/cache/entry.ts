/**
 * An entry as the store keeps it, built from what a caller hands in: its final key and tags (path
 * tags included), its times from the clock, and what it counts toward `cache.maxBytes`.
 */
import type { Bytes, Millis } from '../units.js';
import { pathTags } from './tags.js';
import type { Body, CacheKey, Entry, EntryInput, Space, Tag } from './types.js';

/** Bytes an entry costs beyond its key, tags, metadata and body: the objects holding it. */
const ENTRY_OVERHEAD: Bytes = 200;
/** Bytes a tag costs in the index beyond its characters. */
const TAG_OVERHEAD: Bytes = 64;

/** The entry for `input`, stored at `now` under `input.key` or else `fillKey`, with the fill's `declared` tags. */
export function buildEntry<M>(fillKey: CacheKey, input: EntryInput<M>, declared: readonly Tag[], space: Space<M> | undefined, now: Millis): Entry<M> {
  const key = input.key ?? fillKey;
  const tags = uniqueTags(declared, input.tags, input.path);
  const freshUntil = now + Math.max(0, input.ttlMs);
  return {
    key,
    body: input.body,
    // EntryInput<M> makes `meta` required unless M admits undefined, so an absent meta is an M.
    meta: input.meta as M,
    space,
    tags,
    path: input.path,
    storedAt: now,
    freshUntil,
    staleUntil: freshUntil + Math.max(0, input.staleMs ?? 0),
    bytes: entryBytes(key, tags, input.metaBytes ?? 0, input.body, input.path),
    hits: 0,
  };
}

/** Arrays up to this long are checked for duplicates pair by pair; longer ones through a Set. */
const SHARED_TAGS_MAX = 8;

function uniqueTags(declared: readonly Tag[], added: readonly Tag[] | undefined, path: string | undefined): readonly Tag[] {
  // The caller's own array when it is frozen and already the answer: entries filled with one
  // array (every miss of one PostgreSQL statement) then share it, rather than each keeping a copy
  // for the garbage collector to walk.
  if (path === undefined && Object.isFrozen(declared) && isSharable(declared, added)) return declared;
  const all = new Set<Tag>(declared);
  if (added !== undefined) for (const tag of added) all.add(tag);
  if (path !== undefined) for (const tag of pathTags(path)) all.add(tag);
  return [...all];
}

/** Whether `declared` holds no tag twice and every tag of `added`, for short arrays. */
function isSharable(declared: readonly Tag[], added: readonly Tag[] | undefined): boolean {
  if (declared.length > SHARED_TAGS_MAX || (added !== undefined && added.length > SHARED_TAGS_MAX)) return false;
  for (let i = 0; i < declared.length; i++) if (declared.indexOf(declared[i]!, i + 1) !== -1) return false;
  return added === undefined || added.every((tag) => declared.includes(tag));
}

function entryBytes(key: CacheKey, tags: readonly Tag[], metaBytes: Bytes, body: Body, path: string | undefined): Bytes {
  let bytes = ENTRY_OVERHEAD + Buffer.byteLength(key) + metaBytes;
  if (path !== undefined) bytes += Buffer.byteLength(path);
  for (const tag of tags) bytes += TAG_OVERHEAD + Buffer.byteLength(tag);
  if (Buffer.isBuffer(body)) return bytes + body.length;
  for (const frame of body as readonly Buffer[]) bytes += frame.length;
  return bytes;
}

/** The one place an entry's metadata type is narrowed: by the identity of the space it was stored through. */
export function inSpace<M>(entry: Entry, space: Space<M> | undefined): entry is Entry<M> {
  return entry.space === space;
}
