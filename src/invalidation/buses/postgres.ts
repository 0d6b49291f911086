import pg from 'pg';
import type { BusTransport, Subscription } from '../bus.js';

/** `LISTEN <channel>` on its own connection (https://www.postgresql.org/docs/current/sql-listen.html). */
export class PostgresBus implements BusTransport {
  readonly name: string;
  readonly #url: string;
  readonly #channel: string;
  readonly #connectTimeoutMs: number;

  constructor(options: { url: string; channel: string; name: string; connectTimeoutMs: number }) {
    this.name = options.name;
    this.#url = options.url;
    this.#channel = options.channel;
    this.#connectTimeoutMs = options.connectTimeoutMs;
  }

  async subscribe(onMessage: (payload: string) => void, onLost: (reason: string) => void): Promise<Subscription> {
    const client = new pg.Client({ connectionString: this.#url, connectionTimeoutMillis: this.#connectTimeoutMs, application_name: 'sidecache invalidation' });
    let closing = false;
    let lost = false;
    const lose = (reason: string): void => {
      if (closing || lost) return;
      lost = true;
      client.end().catch(() => undefined);
      onLost(reason);
    };
    client.on('error', (err) => lose(err.message));
    client.on('end', () => lose('the connection ended'));
    client.on('notification', (n) => {
      if (n.channel === this.#channel) onMessage(n.payload ?? '');
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${pg.escapeIdentifier(this.#channel)}`);
    } catch (err) {
      closing = true;
      await client.end().catch(() => undefined);
      throw err;
    }
    return {
      close: async () => {
        closing = true;
        await client.end().catch(() => undefined);
      },
    };
  }
}
