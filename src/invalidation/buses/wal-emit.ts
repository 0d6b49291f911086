/**
 * The publish side of the postgres-wal bus: each message is written into the WAL as a logical
 * decoding message, which every replica's replication stream (pgoutput with `messages 'true'`)
 * hands over under the prefix `sidecache`.
 * https://www.postgresql.org/docs/current/functions-admin.html#FUNCTIONS-REPLICATION
 */
import pg from 'pg';
import type { Millis } from '../../units.js';
import { pgConnector, PublishingConnection } from './publishing-connection.js';

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
  readonly #name: string;
  readonly #connection: PublishingConnection<pg.Client, number>;

  constructor(options: { url: string; name: string; connectTimeoutMs: Millis }) {
    this.#name = options.name;
    // The server's version, read once per connection: it decides the call (and whether there is one).
    const version = async (client: pg.Client): Promise<number> =>
      Number((await client.query<{ v: string }>('SELECT current_setting($1) AS v', ['server_version_num'])).rows[0]!.v);
    this.#connection = new PublishingConnection(
      pgConnector({ url: options.url, connectTimeoutMs: options.connectTimeoutMs, applicationName: 'sidecache invalidation publisher (wal)' }, version),
      options.connectTimeoutMs,
    );
  }

  async emit(payload: string): Promise<void> {
    await this.#connection.send('pg_logical_emit_message', (client, version) => {
      if (version < MIN_MESSAGES_VERSION) {
        throw new Error(
          `${this.#name}: PostgreSQL ${versionText(version)} cannot carry invalidations on the replication stream (pgoutput sends logical decoding messages from 14 on); set publish: false on this bus and publish on a postgres or redis bus`,
        );
      }
      const sql =
        version >= MIN_FLUSH_VERSION ? 'SELECT pg_logical_emit_message(false, $1, $2::bytea, true)' : 'SELECT pg_logical_emit_message(false, $1, $2::bytea)';
      return client.query(sql, [WAL_MESSAGE_PREFIX, Buffer.from(payload)]);
    });
  }

  close(graceMs: Millis): Promise<void> {
    return this.#connection.close(graceMs);
  }
}
