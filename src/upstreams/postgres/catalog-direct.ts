/**
 * The catalog asked over sidecache's own connections, one per database and user: the route when
 * `postgres[].catalogUrl` names a dedicated identity, and the fallback for questions no client
 * session can carry (/cache/explain and the rules check before any client of the database came).
 * A connection unused for `idleMs` is closed, as it holds its database open (DROP DATABASE would be
 * refused).
 */
import pg from 'pg';
import type { Logger } from '../../log.js';
import type { CatalogTransport } from './catalog-transport.js';

/**
 * The connection's settings, sent after login rather than as startup parameters (PgBouncer refuses
 * those it does not know): names resolve in pg_catalog only, whatever search_path the role sets
 * for itself (a session's SET outranks role defaults), and a lock held elsewhere (pg_get_viewdef
 * locks the view) or a slow answer must not stall every later question.
 */
const SESSION_SETUP = `SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', false),
  pg_catalog.set_config('lock_timeout', '100', false), pg_catalog.set_config('statement_timeout', '5000', false)`;

export class DirectCatalog implements CatalogTransport {
  readonly #clients = new Map<string, Promise<pg.Client>>();
  /** Per connection (database and user), the question in flight, which the next one waits for. */
  readonly #chains = new Map<string, Promise<unknown>>();
  /** Per connection, the timer that ends it once it has been idle for `idleMs`. */
  readonly #idle = new Map<string, NodeJS.Timeout>();
  /** A connection unused this long is closed. */
  idleMs = 10_000;
  readonly #config: (database: string, user: string) => pg.ClientConfig;
  readonly #log: Logger;

  /** `config` says how to reach one database as one user. */
  constructor(config: (database: string, user: string) => pg.ClientConfig, log: Logger) {
    this.#config = config;
    this.#log = log;
  }

  query<R>(database: string, user: string, text: string, values: readonly unknown[]): Promise<R[]> {
    // One question at a time per connection (pg queues them too, but warns); other connections do not wait.
    const key = `${database}\u0000${user}`;
    const run = (this.#chains.get(key) ?? Promise.resolve()).then(() => this.#ask<R>(key, database, user, text, values));
    const settled = run.catch(() => undefined);
    this.#chains.set(key, settled);
    void settled.then(() => {
      if (this.#chains.get(key) === settled) this.#chains.delete(key);
    });
    return run;
  }

  async closeDatabase(database: string): Promise<void> {
    const prefix = `${database}\u0000`;
    const closing: Promise<unknown>[] = [];
    for (const [key, client] of this.#clients) {
      if (!key.startsWith(prefix)) continue;
      this.#clients.delete(key);
      closing.push(client.then((c) => c.end()).catch(() => undefined));
    }
    await Promise.all(closing);
  }

  async close(): Promise<void> {
    for (const timer of this.#idle.values()) clearTimeout(timer);
    this.#idle.clear();
    const clients = [...this.#clients.values()];
    this.#clients.clear();
    await Promise.all(clients.map(async (c) => (await c.catch(() => undefined))?.end().catch(() => undefined)));
  }

  async #ask<R>(key: string, database: string, user: string, text: string, values: readonly unknown[]): Promise<R[]> {
    const client = await this.#client(key, database, user);
    try {
      this.#touch(key);
      return (await client.query(text, values as unknown[])).rows as R[];
    } catch (err) {
      // A broken connection is replaced on the next question; this one is answered "unknown".
      this.#clients.delete(key);
      client.end().catch(() => undefined);
      throw err;
    }
  }

  /** (Re)starts the idle timer of a connection that is being used. */
  #touch(key: string): void {
    clearTimeout(this.#idle.get(key));
    const timer = setTimeout(() => {
      this.#idle.delete(key);
      const client = this.#clients.get(key);
      if (client === undefined || this.#chains.has(key)) return;
      this.#clients.delete(key);
      void client.then((c) => c.end()).catch(() => undefined);
    }, this.idleMs);
    timer.unref();
    this.#idle.set(key, timer);
  }

  #client(key: string, database: string, user: string): Promise<pg.Client> {
    let client = this.#clients.get(key);
    if (client === undefined) {
      client = (async () => {
        const c = new pg.Client(this.#config(database, user));
        c.on('error', (err) => {
          this.#log.debug('catalog connection failed', { database, err: err.message });
          this.#clients.delete(key);
        });
        await c.connect();
        await c.query(SESSION_SETUP);
        return c;
      })();
      client.catch(() => this.#clients.delete(key));
      this.#clients.set(key, client);
    }
    return client;
  }
}
