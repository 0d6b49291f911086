/**
 * The publish side of the postgres-wal bus: each message is written into the WAL as a logical
 * decoding message, which every replica's replication stream (pgoutput with `messages 'true'`)
 * hands over under the prefix `sidecache`.
 * https://www.postgresql.org/docs/current/functions-admin.html#FUNCTIONS-REPLICATION
 */
import pg from 'pg';
import type { Millis } from '../../units.js';
import { within } from '../bus.js';

/** The prefix sidecache's messages carry; messages with any other prefix are someone else's. */
export const WAL_MESSAGE_PREFIX = 'sidecache';
/** pgoutput sends logical decoding messages from PostgreSQL 14 on (its `messages` option). */
export const MIN_MESSAGES_VERSION = 140_000;
/** `pg_logical_emit_message` takes a `flush` argument from PostgreSQL 17 on. */
const MIN_FLUSH_VERSION = 170_000;

/** `14.5` from `140005` (server_version_num, PostgreSQL 10 and later). */
export function versionText(num: number): string {
  return `${Math.floor(num / 10_000)}.${num % 10_000}`;
}

/**
 * `SELECT pg_logical_emit_message(false, 'sidecache', $1)` on a connection of its own, opened at
 * the first emit (the replication connection runs no functions while it streams). Non-transactional:
 * the message is in the WAL as the statement runs, whatever becomes of a transaction. The payload
 * travels as bytea, so its UTF-8 bytes reach the receivers unchanged whatever the server encoding.
 * On 17+ it is flushed at once (`flush => true`); before, the WAL writer flushes it within
 * `wal_writer_delay` (200 ms by default) and only then does the walsender send it. The server's
 * version is read once per connection: on 13, whose pgoutput cannot carry messages, every emit
 * fails saying so.
 */
export class WalEmitter {
  readonly #url: string;
  readonly #name: string;
  readonly #connectTimeoutMs: Millis;
  #conn: { client: pg.Client; ready: Promise<number> } | undefined;
  readonly #dropped = new WeakSet<pg.Client>();

  constructor(options: { url: string; name: string; connectTimeoutMs: Millis }) {
    this.#url = options.url;
    this.#name = options.name;
    this.#connectTimeoutMs = options.connectTimeoutMs;
  }

  async emit(payload: string): Promise<void> {
    const { client, version } = await this.#connection();
    if (version < MIN_MESSAGES_VERSION) {
      throw new Error(
        `${this.#name}: PostgreSQL ${versionText(version)} cannot carry invalidations on the replication stream (pgoutput sends logical decoding messages from 14 on); set publish: false on this bus and publish on a postgres or redis bus`,
      );
    }
    const sql =
      version >= MIN_FLUSH_VERSION ? 'SELECT pg_logical_emit_message(false, $1, $2::bytea, true)' : 'SELECT pg_logical_emit_message(false, $1, $2::bytea)';
    try {
      await within(client.query(sql, [WAL_MESSAGE_PREFIX, Buffer.from(payload)]), this.#connectTimeoutMs, 'pg_logical_emit_message', () => this.#drop(client));
    } catch (err) {
      this.#drop(client);
      throw err;
    }
  }

  async close(graceMs: Millis): Promise<void> {
    const conn = this.#conn;
    this.#conn = undefined;
    if (conn === undefined) return;
    const { client } = conn;
    this.#dropped.add(client);
    await within(client.end(), graceMs, 'closing', () => client.connection.stream.destroy()).catch(() => client.connection.stream.destroy());
  }

  async #connection(): Promise<{ client: pg.Client; version: number }> {
    let conn = this.#conn;
    if (conn === undefined) {
      const client = new pg.Client({
        connectionString: this.#url,
        connectionTimeoutMillis: this.#connectTimeoutMs,
        application_name: 'sidecache invalidation publisher (wal)',
        keepAlive: true,
      });
      // Errors are the emit's to report; a closed connection is replaced at the next emit.
      client.on('error', () => this.#drop(client));
      client.on('end', () => this.#drop(client));
      const connecting = client
        .connect()
        .then(() => client.query<{ v: string }>('SELECT current_setting($1) AS v', ['server_version_num']))
        .then(({ rows }) => Number(rows[0]!.v));
      conn = { client, ready: within(connecting, this.#connectTimeoutMs, 'connecting', () => client.connection.stream.destroy()) };
      this.#conn = conn;
    }
    try {
      return { client: conn.client, version: await conn.ready };
    } catch (err) {
      this.#drop(conn.client);
      throw err;
    }
  }

  #drop(client: pg.Client): void {
    if (this.#dropped.has(client)) return;
    this.#dropped.add(client);
    if (this.#conn?.client === client) this.#conn = undefined;
    client.connection.stream.destroy();
    client.end().catch(() => undefined);
  }
}
