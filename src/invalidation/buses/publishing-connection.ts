/**
 * The connection a bus publishes on, apart from its subscription: opened at the first publish,
 * closed and forgotten when it fails or does not answer within `timeoutMs`, so the next publish
 * connects anew. The same for every transport; `Client` is what the transport speaks through
 * (a `pg.Client`, an ioredis client) and `Ready` what connecting learnt (e.g. a server version).
 */
import pg from 'pg';
import type { Millis } from '../../units.js';
import { within } from '../bus.js';

export interface Connector<Client, Ready> {
  /** Starts connecting; `lost` is to be called when the connection errs or ends on its own. */
  open(lost: (client: Client) => void): { client: Client; connecting: Promise<Ready> };
  /** Closes at once, whatever the state. */
  destroy(client: Client): void;
  /** Closes politely (the server's answer awaited). */
  end(client: Client): Promise<unknown>;
}

export class PublishingConnection<Client extends object, Ready = void> {
  readonly #connector: Connector<Client, Ready>;
  readonly #timeoutMs: Millis;
  #current: { client: Client; ready: Promise<Ready> } | undefined;
  readonly #dropped = new WeakSet<Client>();

  constructor(connector: Connector<Client, Ready>, timeoutMs: Millis) {
    this.#connector = connector;
    this.#timeoutMs = timeoutMs;
  }

  /** Runs `send` on the connection (opened if need be), within the timeout; a failure drops the connection. */
  async send<T>(what: string, send: (client: Client, ready: Ready) => Promise<T>): Promise<T> {
    const { client, ready } = await this.#connection();
    try {
      return await within(send(client, ready), this.#timeoutMs, what, () => this.#drop(client));
    } catch (err) {
      this.#drop(client);
      throw err;
    }
  }

  async close(graceMs: Millis): Promise<void> {
    const current = this.#current;
    this.#current = undefined;
    if (current === undefined) return;
    const { client } = current;
    this.#dropped.add(client);
    const destroy = (): void => this.#connector.destroy(client);
    await within(this.#connector.end(client), graceMs, 'closing', destroy).catch(destroy);
  }

  async #connection(): Promise<{ client: Client; ready: Ready }> {
    let current = this.#current;
    if (current === undefined) {
      const { client, connecting } = this.#connector.open((lost) => this.#drop(lost));
      current = { client, ready: within(connecting, this.#timeoutMs, 'connecting', () => this.#connector.destroy(client)) };
      this.#current = current;
    }
    try {
      return { client: current.client, ready: await current.ready };
    } catch (err) {
      this.#drop(current.client);
      throw err;
    }
  }

  #drop(client: Client): void {
    if (this.#dropped.has(client)) return;
    this.#dropped.add(client);
    if (this.#current?.client === client) this.#current = undefined;
    this.#connector.destroy(client);
  }
}

/** A `pg.Client` to publish through (NOTIFY, logical decoding messages); `then` reads what connecting should learn. */
export function pgConnector<Ready>(
  options: { url: string; connectTimeoutMs: Millis; applicationName: string },
  then: (client: pg.Client) => Promise<Ready>,
): Connector<pg.Client, Ready> {
  return {
    open: (lost) => {
      const client = new pg.Client({
        connectionString: options.url,
        connectionTimeoutMillis: options.connectTimeoutMs,
        application_name: options.applicationName,
        keepAlive: true,
      });
      // Errors are the publish's to report; a closed connection is replaced at the next publish.
      client.on('error', () => lost(client));
      client.on('end', () => lost(client));
      return { client, connecting: client.connect().then(() => then(client)) };
    },
    destroy: (client) => {
      client.connection.stream.destroy();
      client.end().catch(() => undefined);
    },
    end: (client) => client.end(),
  };
}
