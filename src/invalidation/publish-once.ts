import { SidecacheError } from '../errors.js';
import { type BusEntry, busTransports } from './transports.js';

/** The bus types a message may be published on from the command line; the URL's scheme picks one when not named. */
const TYPES = ['postgres', 'redis', 'redis-stream'] as const;
type BusType = (typeof TYPES)[number];

/**
 * Publishes one message straight onto a bus (`sidecache invalidate --bus`), the way the bus's
 * own transport does (NOTIFY, PUBLISH, XADD), without a running sidecache. Resolves to the bus's
 * name (`type:channel`). `channel` is the stream's key for `redis-stream`.
 */
export async function publishOnce(options: { url: string; type: string | undefined; channel: string; maxLen: number }, payload: string): Promise<string> {
  const type = busType(options.url, options.type);
  const common = {
    url: options.url,
    heartbeat: 5_000,
    onGap: 'flush',
    maxMessageBytes: Number.MAX_SAFE_INTEGER,
    publish: true,
    whileDown: { maxAgeMs: 0 },
  } as const;
  const entry: BusEntry =
    type === 'redis-stream'
      ? { ...common, type, stream: options.channel, maxLen: options.maxLen }
      : type === 'redis'
        ? { ...common, type, channel: options.channel, cluster: false }
        : { ...common, type, channel: options.channel };
  const { transport } = busTransports([entry])[0]!;
  if (transport.publish === undefined) throw usage(`invalidate --bus: a ${type} bus cannot publish`);
  try {
    await transport.publish(payload);
  } finally {
    // The publishing connection would keep the command's process alive.
    await transport.close?.(1_000);
  }
  return transport.name;
}

/** The type named, else the one the URL's scheme implies; a type the URL cannot serve is a usage error. */
function busType(url: string, named: string | undefined): BusType {
  const scheme = schemeOf(url);
  const redis = scheme === 'redis:' || scheme === 'rediss:';
  const postgres = scheme === 'postgres:' || scheme === 'postgresql:';
  if (!redis && !postgres)
    throw usage(`invalidate --bus: expected a redis://, rediss:// or postgres:// URL, got ${scheme === undefined ? 'something else' : scheme}`);
  if (named === undefined) return redis ? 'redis' : 'postgres';
  if (!(TYPES as readonly string[]).includes(named)) throw usage(`invalidate --type: expected one of ${TYPES.join(', ')}, got "${named}"`);
  if ((named === 'postgres') !== postgres) throw usage(`invalidate --type ${named} needs a ${postgres ? 'redis://' : 'postgres://'} URL, got ${scheme}`);
  return named as BusType;
}

function schemeOf(url: string): string | undefined {
  try {
    return new URL(url).protocol;
  } catch {
    // Not a URL; the caller says so without quoting it (it may hold a password).
    return undefined;
  }
}

function usage(message: string): SidecacheError {
  return new SidecacheError('SC_ERR_USAGE', message);
}
