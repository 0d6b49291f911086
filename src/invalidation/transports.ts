/** The bus transports `invalidation[]` describes. */
import type { BusTransport } from './bus.js';
import { PostgresBus } from './buses/postgres.js';
import { PostgresWalBus } from './buses/postgres-wal.js';
import { RedisBus } from './buses/redis.js';
import { RedisStreamBus } from './buses/redis-stream.js';

/** One `invalidation[]` entry, as far as its transport needs it (the config module's type, not imported: see docs/architecture.md). */
interface BusCommon {
  readonly heartbeat: number;
  readonly onGap: 'flush' | 'keep';
  readonly maxMessageBytes: number;
  readonly publish: boolean;
  readonly whileDown: { readonly maxAgeMs: number };
}
interface WalEntry extends BusCommon {
  readonly type: 'postgres-wal';
  readonly url: string;
  readonly publication: string;
  readonly tables: readonly string[];
  readonly createPublication: boolean;
  readonly slot?: string | undefined;
  readonly maxSlotLag: number;
}
export type BusEntry =
  | (BusCommon & { readonly type: 'postgres'; readonly url: string; readonly channel: string })
  | (BusCommon & { readonly type: 'redis'; readonly url: string; readonly channel: string; readonly cluster: boolean })
  | (BusCommon & { readonly type: 'redis-stream'; readonly url: string; readonly stream: string; readonly maxLen: number })
  | WalEntry;

/** What transports report beside their messages. */
export interface TransportHooks {
  /** WAL a replication slot holds back for bus `bus`, and whether that is past its `maxSlotLag`. */
  walLag?(bus: string, bytes: number, over: boolean): void;
}

/** Bus transports from `invalidation[]`, named `type:channel` (`redis-stream:stream`, `postgres-wal:slot-or-publication`), with `#n` when two would share a name. */
export function busTransports(
  entries: readonly BusEntry[],
  hooks: TransportHooks = {},
): { transport: BusTransport; gap: 'flush' | 'keep'; maxMessageBytes: number; publish: boolean; whileDown: { maxAgeMs: number }; settings: string }[] {
  const seen = new Map<string, number>();
  return entries.map((bus) => {
    const base = `${bus.type}:${bus.type === 'postgres-wal' ? (bus.slot ?? bus.publication) : bus.type === 'redis-stream' ? bus.stream : bus.channel}`;
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
          : bus.type === 'redis'
            ? new RedisBus({ url: bus.url, channel: bus.channel, name, cluster: bus.cluster, connectTimeoutMs, heartbeatMs })
            : walBus(bus, name, connectTimeoutMs, hooks);
    return { transport, gap: bus.onGap, maxMessageBytes: bus.maxMessageBytes, publish: bus.publish, whileDown: bus.whileDown, settings: JSON.stringify(bus) };
  });
}

function walBus(bus: WalEntry, name: string, connectTimeoutMs: number, hooks: TransportHooks): PostgresWalBus {
  return new PostgresWalBus({
    url: bus.url,
    name,
    publication: bus.publication,
    tables: bus.tables,
    createPublication: bus.createPublication,
    slot: bus.slot,
    connectTimeoutMs,
    heartbeatMs: bus.heartbeat,
    maxMessageBytes: bus.maxMessageBytes,
    onLag: (bytes) => hooks.walLag?.(name, bytes, bus.maxSlotLag > 0 && bytes > bus.maxSlotLag),
  });
}
