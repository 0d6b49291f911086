import { Cluster, Redis } from 'ioredis';
import type { BusTransport, Subscription } from '../bus.js';

/**
 * `SUBSCRIBE <channel>` with ioredis. With `cluster`, the URL's host is a seed node of a Redis
 * Cluster (classic pub/sub messages reach every node). ioredis's own reconnecting is off: the
 * runner reconnects, so that every reconnect is seen as a possible gap.
 */
export class RedisBus implements BusTransport {
  readonly name: string;
  readonly #url: string;
  readonly #channel: string;
  readonly #cluster: boolean;
  readonly #connectTimeoutMs: number;

  constructor(options: { url: string; channel: string; name: string; cluster: boolean; connectTimeoutMs: number }) {
    this.name = options.name;
    this.#url = options.url;
    this.#channel = options.channel;
    this.#cluster = options.cluster;
    this.#connectTimeoutMs = options.connectTimeoutMs;
  }

  async subscribe(onMessage: (payload: string) => void, onLost: (reason: string) => void): Promise<Subscription> {
    const common = { lazyConnect: true, autoResubscribe: false, enableOfflineQueue: false, maxRetriesPerRequest: 0, connectTimeout: this.#connectTimeoutMs };
    const client = this.#cluster
      ? new Cluster([this.#url], {
          lazyConnect: true,
          clusterRetryStrategy: () => null,
          redisOptions: { lazyConnect: true, autoResubscribe: false, maxRetriesPerRequest: 0, connectTimeout: this.#connectTimeoutMs },
        })
      : new Redis(this.#url, { ...common, retryStrategy: () => null });
    let closing = false;
    let lost = false;
    const lose = (reason: string): void => {
      if (closing || lost) return;
      lost = true;
      client.disconnect();
      onLost(reason);
    };
    client.on('error', (err: Error) => lose(err.message));
    client.on('close', () => lose('the connection closed'));
    client.on('end', () => lose('the connection ended'));
    client.on('message', (channel: string, payload: string) => {
      if (channel === this.#channel) onMessage(payload);
    });
    try {
      await client.connect();
      await client.subscribe(this.#channel);
    } catch (err) {
      closing = true;
      client.disconnect();
      throw err;
    }
    return {
      close: async () => {
        closing = true;
        await client.quit().catch(() => client.disconnect());
      },
    };
  }
}
