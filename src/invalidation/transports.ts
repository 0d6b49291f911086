/** The bus transports `invalidation[]` describes. */
import type { BusTransport } from './bus.js';
import { PostgresBus } from './buses/postgres.js';
import { RedisBus } from './buses/redis.js';
import { RedisStreamBus } from './buses/redis-stream.js';

/** One `invalidation[]` entry, as far as its transport needs it (the config module's type, not imported: see docs/architecture.md). */
interface BusCommon {
  readonly url: string;
  readonly channel: string;
  readonly heartbeat: number;
  readonly onGap: 'flush' | 'keep';
  readonly maxMessageBytes: number;
  readonly publish: boolean;
  readonly whileDown: { readonly maxAgeMs: number };
}
export type BusEntry =
  | (BusCommon & { readonly type: 'postgres' })
  | (BusCommon & { readonly type: 'redis'; readonly cluster: boolean })
  | (Omit<BusCommon, 'channel'> & { readonly type: 'redis-stream'; readonly stream: string; readonly maxLen: number });

/** Bus transports from `invalidation[]`, named `type:channel` (with `#n` when two would share a name). */
export function busTransports(
  entries: readonly BusEntry[],
): { transport: BusTransport; gap: 'flush' | 'keep'; maxMessageBytes: number; publish: boolean; whileDown: { maxAgeMs: number }; settings: string }[] {
  const seen = new Map<string, number>();
  return entries.map((bus) => {
    const base = `${bus.type}:${bus.type === 'redis-stream' ? bus.stream : bus.channel}`;
    const n = (seen.get(base) ?? 0) + 1;
    seen.set(base, n);
    const name = n === 1 ? base : `${base}#${n}`;
    const connectTimeoutMs = 5_000;
    const heartbeatMs = bus.heartbeat;
    const transport =
      bus.type === 'postgres'
        ? new PostgresBus({ url: bus.url, channel: bus.channel, name, connectTimeoutMs, heartbeatMs })
        : bus.type === 'redis-stream'
          ? new RedisStreamBus({
              url: bus.url,
              stream: bus.stream,
              name,
              maxLen: bus.maxLen,
              connectTimeoutMs,
              heartbeatMs,
              maxMessageBytes: bus.maxMessageBytes,
            })
          : new RedisBus({ url: bus.url, channel: bus.channel, name, cluster: bus.cluster, connectTimeoutMs, heartbeatMs });
    return { transport, gap: bus.onGap, maxMessageBytes: bus.maxMessageBytes, publish: bus.publish, whileDown: bus.whileDown, settings: JSON.stringify(bus) };
  });
}
