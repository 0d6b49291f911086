import pg from 'pg';
import type { Millis } from '../../units.js';
import { type BusTransport, type Subscription, within } from '../bus.js';
import { pgConnector, PublishingConnection } from './publishing-connection.js';

/** `LISTEN <channel>` on its own connection (https://www.postgresql.org/docs/current/sql-listen.html). */
export class PostgresBus implements BusTransport {
  readonly name: string;
  readonly #url: string;
  readonly #channel: string;
  readonly #connectTimeoutMs: Millis;
  readonly #heartbeatMs: Millis;
  /** NOTIFY payloads must be shorter than 8000 bytes (https://www.postgresql.org/docs/current/sql-notify.html). */
  readonly maxPayloadBytes = 7999;
  /** The connection `pg_notify` runs on (the LISTEN one is the runner's), opened at the first publish. */
  readonly #publisher: PublishingConnection<pg.Client>;

  constructor(options: { url: string; channel: string; name: string; connectTimeoutMs: Millis; heartbeatMs: Millis }) {
    this.name = options.name;
    this.#url = options.url;
    this.#channel = options.channel;
    this.#connectTimeoutMs = options.connectTimeoutMs;
    this.#heartbeatMs = options.heartbeatMs;
    this.#publisher = new PublishingConnection(
      pgConnector({ url: options.url, connectTimeoutMs: options.connectTimeoutMs, applicationName: 'sidecache invalidation publisher' }, async () => undefined),
      options.connectTimeoutMs,
    );
  }

  async subscribe(onMessage: (payload: string) => void, onLost: (reason: string) => void): Promise<Subscription> {
    const client = new pg.Client({
      connectionString: this.#url,
      connectionTimeoutMillis: this.#connectTimeoutMs,
      application_name: 'sidecache invalidation',
      keepAlive: true,
    });
    // Until LISTEN has answered, a failure is this attempt's rejection; only after, a loss.
    let listening = false;
    let early: string | undefined;
    let over = false;
    let heartbeat: NodeJS.Timeout | undefined;
    const end = (): void => {
      over = true;
      if (heartbeat !== undefined) clearInterval(heartbeat);
      client.connection.stream.destroy();
      client.end().catch(() => undefined);
    };
    const lose = (reason: string): void => {
      if (over) return;
      if (!listening) return void (early ??= reason);
      end();
      onLost(reason);
    };
    client.on('error', (err) => lose(err.message));
    client.on('end', () => lose('the connection ended'));
    // NOTIFY payloads are shorter than 8000 bytes (https://www.postgresql.org/docs/current/sql-notify.html).
    client.on('notification', (n) => {
      if (n.channel === this.#channel) onMessage(n.payload ?? '');
    });
    const ready = async (): Promise<void> => {
      await client.connect();
      await client.query(`LISTEN ${pg.escapeIdentifier(this.#channel)}`);
    };
    try {
      await within(ready(), this.#connectTimeoutMs, 'connecting and listening', end);
    } catch (err) {
      if (!over) end();
      throw err;
    }
    if (over || early !== undefined) {
      end();
      throw new Error(early ?? 'the connection closed while listening');
    }
    listening = true;
    heartbeat = this.#heartbeat(client, lose);
    return {
      close: async (graceMs) => {
        if (over) return;
        over = true;
        clearInterval(heartbeat);
        // end() sends Terminate and waits for the socket to close; a half-open one never does.
        await within(client.end(), graceMs, 'closing', () => client.connection.stream.destroy()).catch(() => client.connection.stream.destroy());
      },
    };
  }

  /**
   * `SELECT pg_notify(channel, payload)` on a connection of its own, outside any transaction block,
   * so the notification is sent as the statement commits
   * (https://www.postgresql.org/docs/current/functions-info.html#FUNCTIONS-INFO-NOTIFY). A
   * connection that fails or does not answer within `connectTimeout` is closed; the next publish
   * connects anew.
   */
  async publish(payload: string): Promise<void> {
    await this.#publisher.send('pg_notify', (client) => client.query('SELECT pg_notify($1, $2)', [this.#channel, payload]));
  }

  close(graceMs: Millis): Promise<void> {
    return this.#publisher.close(graceMs);
  }

  /**
   * `SELECT 1` on the LISTEN connection every `heartbeatMs`: an answer still missing at the
   * next beat means the connection no longer reaches the server (TCP keepalive alone takes minutes
   * to notice a half-open connection). Notifications queued meanwhile still arrive between queries.
   */
  #heartbeat(client: pg.Client, lose: (reason: string) => void): NodeJS.Timeout {
    let waiting = false;
    const timer = setInterval(() => {
      if (waiting) return lose(`no answer to a heartbeat query within ${this.#heartbeatMs} ms`);
      waiting = true;
      client.query('SELECT 1').then(
        () => void (waiting = false),
        (err: Error) => lose(`the heartbeat query failed: ${err.message}`),
      );
    }, this.#heartbeatMs);
    timer.unref();
    return timer;
  }
}
