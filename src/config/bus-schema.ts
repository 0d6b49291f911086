/** The `invalidation[]` section: one entry per bus, by `type`, with the keys every bus has. */
import { arrayOf, boolean, byType, duration, integer, object, oneOf, optional, pattern, refine, required, size, type Spec, withDefault } from './spec.js';
import { formatDuration, parseDuration } from './units.js';
import { channel, pgUrl, tableName, url } from './fields.js';

/** `flush` (drop every entry when a bus comes back after an outage) or `keep` (accept the risk). */
const onGap = withDefault(oneOf(['flush', 'keep'] as const), 'flush');

/**
 * `bypass` (serve nothing from the cache, fill nothing) or `ttl:<duration>` (serve entries stored
 * less than that long ago), while the bus is down; read as the longest age an entry may have
 * (0 for `bypass`).
 */
const whileDown: Spec<{ maxAgeMs: number }> = {
  expected: 'bypass or ttl:<duration> like "ttl:30s"',
  format: (value) => (value.maxAgeMs === 0 ? 'bypass' : `ttl:${formatDuration(value.maxAgeMs)}`),
  check(value, path, problems) {
    if (value === 'bypass') return { maxAgeMs: 0 };
    const ms = typeof value === 'string' && value.startsWith('ttl:') ? parseDuration(value.slice(4)) : undefined;
    if (ms?.ok === true && ms.value > 0) return { maxAgeMs: ms.value };
    problems.push({ path, message: `expected bypass or ttl:<duration> like "ttl:30s" (more than 0), got ${JSON.stringify(value)}` });
    return undefined;
  },
};

/** What every bus type has: what a gap does, how often it proves it is alive, how large a message may be. */
const busCommon = {
  onGap,
  /** How entries are served while the bus is down (messages may be lost meanwhile). */
  whileDown: withDefault(whileDown, { maxAgeMs: 0 }),
  /** Publish this replica's own invalidations on the bus, for the other replicas. */
  publish: withDefault(boolean, true),
  /** How often the bus proves it still hears the server; an answer missing by the next beat is a lost connection. */
  heartbeat: withDefault(
    refine(duration, 'a duration from 10ms to 1h like "5s"', (ms) => (ms >= 10 && ms <= 3_600_000 ? undefined : '')),
    5_000,
  ),
  /** A larger message is refused (counted, logged) before it is decoded. */
  maxMessageBytes: withDefault(
    refine(size, 'a size from 1KiB to 256MiB like "1MiB"', (bytes) => (bytes >= 1024 && bytes <= 256 * 1024 ** 2 ? undefined : '')),
    1024 ** 2,
  ),
};
export const bus = byType({
  postgres: object({
    url: required(pgUrl('postgres://127.0.0.1:5432/app')),
    channel: withDefault(channel, 'sidecache'),
    ...busCommon,
  }),
  redis: object({
    url: required(url(['redis:', 'rediss:'], 'redis://127.0.0.1:6379')),
    channel: withDefault(pattern(/^\S+$/, 'a channel name without spaces'), 'sidecache'),
    /** The URL names a seed node of a Redis Cluster. */
    cluster: withDefault(boolean, false),
    ...busCommon,
  }),
  'redis-stream': object({
    url: required(url(['redis:', 'rediss:'], 'redis://127.0.0.1:6379')),
    /** The stream's key: read with XREAD from the last entry applied, written with XADD. */
    stream: withDefault(pattern(/^\S+$/, 'a key name without spaces'), 'sidecache'),
    /** Entries sidecache's own XADDs keep in the stream (`MAXLEN ~`, https://redis.io/docs/latest/commands/xadd/); 0: no trimming. */
    maxLen: withDefault(integer(0, 1_000_000_000), 10_000),
    ...busCommon,
  }),
  'postgres-wal': object({
    url: required(pgUrl('postgres://sidecache@127.0.0.1:5432/app')),
    /** The publication read (pgoutput). */
    publication: withDefault(pattern(/^[a-z_][a-z0-9_$]{0,62}$/, 'a publication name (lower-case letters, digits, "_")'), 'sidecache'),
    /** Create the publication when it is missing (refused while a table it would cover has no replica identity). */
    createPublication: withDefault(boolean, false),
    /** Tables of the publication `createPublication` creates (and their partitions); empty: FOR ALL TABLES. */
    tables: withDefault(arrayOf(tableName), []),
    /** A replication slot kept across reconnects and restarts (resumed without a flush); absent: a temporary slot per connection. */
    slot: optional(pattern(/^[a-z0-9_]{1,63}$/, 'a slot name (lower-case letters, digits, "_")')),
    /** WAL a named slot may hold back before sidecache warns (sidecache_wal_slot_lag_bytes). */
    maxSlotLag: withDefault(size, 1024 ** 3),
    ...busCommon,
  }),
});
