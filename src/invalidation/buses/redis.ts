import { Cluster, Redis } from 'ioredis';
import type { Millis } from '../../units.js';
import { type BusTransport, type Subscription, within } from '../bus.js';
import { PublishingConnection } from './publishing-connection.js';

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
  readonly #connectTimeoutMs: Millis;
  readonly #heartbeatMs: Millis;
  /** The connection PUBLISH goes through (a subscribed connection cannot publish), opened at the first publish. */
  readonly #publisher: PublishingConnection<Redis | Cluster>;

  constructor(options: { url: string; channel: string; name: string; cluster: boolean; connectTimeoutMs: Millis; heartbeatMs: Millis }) {
    this.name = options.name;
    this.#url = options.url;
    this.#channel = options.channel;
    this.#cluster = options.cluster;
    this.#connectTimeoutMs = options.connectTimeoutMs;
    this.#heartbeatMs = options.heartbeatMs;
    const { url, cluster, connectTimeoutMs } = options;
    this.#publisher = new PublishingConnection<Redis | Cluster>(
      {
        open: (lost) => {
          const redisOptions = { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, connectTimeout: connectTimeoutMs };
          const client = cluster
            ? new Cluster([url], { lazyConnect: true, enableOfflineQueue: false, clusterRetryStrategy: () => null, redisOptions })
            : new Redis(url, { ...redisOptions, retryStrategy: () => null });
          // Errors are the publish's to report; a closed connection is replaced at the next publish.
          client.on('error', () => undefined);
          client.on('end', () => lost(client));
          return { client, connecting: client.connect() };
        },
        destroy: (client) => client.disconnect(),
        end: (client) => client.quit(),
      },
      connectTimeoutMs,
    );
  }

  async subscribe(onMessage: (payload: Buffer) => void, onLost: (reason: string) => void): Promise<Subscription> {
    const common = { lazyConnect: true, autoResubscribe: false, enableOfflineQueue: false, maxRetriesPerRequest: 0, connectTimeout: this.#connectTimeoutMs };
    const client = this.#cluster
      ? new Cluster([this.#url], {
          lazyConnect: true,
          clusterRetryStrategy: () => null,
          redisOptions: { lazyConnect: true, autoResubscribe: false, maxRetriesPerRequest: 0, connectTimeout: this.#connectTimeoutMs },
        })
      : new Redis(this.#url, { ...common, retryStrategy: () => null });
    // Until SUBSCRIBE has answered, a failure is this attempt's rejection; only after, a loss.
    let subscribed = false;
    let early: string | undefined;
    let over = false;
    let heartbeat: NodeJS.Timeout | undefined;
    const end = (): void => {
      over = true;
      if (heartbeat !== undefined) clearInterval(heartbeat);
      client.disconnect();
    };
    const lose = (reason: string): void => {
      if (over) return;
      if (!subscribed) return void (early ??= reason);
      end();
      onLost(reason);
    };
    client.on('error', (err: Error) => lose(err.message));
    client.on('close', () => lose('the connection closed'));
    client.on('end', () => lose('the connection ended'));
    // The raw bytes: the runner refuses an oversized message before it is decoded.
    client.on('messageBuffer', (channel: Buffer, payload: Buffer) => {
      if (channel.toString() === this.#channel) onMessage(payload);
    });
    const ready = async (): Promise<void> => {
      await client.connect();
      await client.subscribe(this.#channel);
    };
    try {
      await within(ready(), this.#connectTimeoutMs, 'connecting and subscribing', end);
    } catch (err) {
      end();
      throw err;
    }
    if (over || early !== undefined) {
      end();
      throw new Error(early ?? 'the connection closed while subscribing');
    }
    subscribed = true;
    heartbeat = this.#heartbeat(client, lose);
    return {
      close: async (graceMs) => {
        if (over) return;
        over = true;
        clearInterval(heartbeat);
        // QUIT waits for the server's answer; a half-open connection never gives it.
        await within(client.quit(), graceMs, 'QUIT', () => client.disconnect()).catch(() => client.disconnect());
      },
    };
  }

  /**
   * `PUBLISH <channel> <payload>` (https://redis.io/docs/latest/commands/publish/) on a connection
   * of its own. Fails at once while it cannot connect (no offline queue), and within
   * `connectTimeout` on a connection that stopped answering, which is then closed: the next publish
   * connects anew.
   */
  async publish(payload: string): Promise<void> {
    await this.#publisher.send('PUBLISH', (client) => client.publish(this.#channel, payload));
  }

  close(graceMs: Millis): Promise<void> {
    return this.#publisher.close(graceMs);
  }

  /**
   * PING on the subscriber connection every `heartbeatMs` (allowed in subscribed state,
   * https://redis.io/docs/latest/commands/ping/): an answer still missing at the next beat means
   * the connection no longer reaches the server, even if the socket looks open. With `cluster`,
   * the PING goes to a node of the cluster rather than the subscriber connection itself (ioredis
   * does not expose it); TCP keepalive covers that connection.
   */
  #heartbeat(client: Redis | Cluster, lose: (reason: string) => void): NodeJS.Timeout {
    let waiting = false;
    const timer = setInterval(() => {
      if (waiting) return lose(`no answer to PING within ${this.#heartbeatMs} ms`);
      waiting = true;
      client.ping().then(
        () => void (waiting = false),
        (err: Error) => lose(`PING failed: ${err.message}`),
      );
    }, this.#heartbeatMs);
    timer.unref();
    return timer;
  }
}
