import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Bytes, Millis } from '../../units.js';
import { type BusTransport, type Subscription, within } from '../bus.js';
import { MIN_MESSAGES_VERSION, WAL_MESSAGE_PREFIX, WalEmitter } from './wal-emit.js';
import { ensurePublication } from './wal-publication.js';
import { decodeReplication, type Lsn, PgOutputReader, standbyStatus, type Touched } from './wal-protocol.js';

/** What the WAL bus needs from its `invalidation[]` entry. */
export interface PostgresWalOptions {
  url: string;
  name: string;
  /** The publication to read (wal-publication.ts). */
  publication: string;
  /** Tables of the publication sidecache creates with `createPublication`; empty: every table of the database. */
  tables: readonly string[];
  createPublication: boolean;
  /** A replication slot kept between connections; undefined: a temporary slot per connection. */
  slot: string | undefined;
  connectTimeoutMs: Millis;
  heartbeatMs: Millis;
  /** A commit naming more tables than fit in a message of this size invalidates everything instead. */
  maxMessageBytes: Bytes;
  /** Hears how many bytes of WAL the slot holds back for this bus (the server's WAL end less what is confirmed). */
  onLag?: (bytes: number) => void;
}

/** The parts of node-postgres's connection the replication stream uses (its CopyBoth mode, not in @types/pg). */
interface CopyBothConnection {
  on(event: 'copyData', listener: (msg: { chunk: Buffer }) => void): void;
  once(event: 'replicationStart', listener: () => void): void;
  sendCopyFromChunk(chunk: Buffer): void;
  stream: { destroy(): void };
}

/** `0/16B3748` → bigint. */
function parseLsn(text: string): Lsn {
  const [hi, lo] = text.split('/');
  return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`);
}

/**
 * Invalidation from PostgreSQL's logical replication stream (pgoutput): every committed change to
 * a published table, whoever made it (clients that bypass sidecache, triggers, cascades, each
 * partition), invalidates that table when its commit arrives, with no trigger or NOTIFY to install.
 * Runs on node-postgres's own replication mode (`replication: 'database'`, the walsender's
 * CopyBoth stream): https://www.postgresql.org/docs/current/protocol-replication.html
 * Replicas publish their own invalidations into the same stream as logical decoding messages
 * (wal-emit.ts), which the stream hands over like any other bus's payload.
 */
export class PostgresWalBus implements BusTransport {
  readonly name: string;
  readonly #options: PostgresWalOptions;
  readonly #emitter: WalEmitter;

  constructor(options: PostgresWalOptions) {
    this.name = options.name;
    this.#options = options;
    this.#emitter = new WalEmitter({ url: options.url, name: options.name, connectTimeoutMs: options.connectTimeoutMs });
  }

  /** Writes `payload` into the WAL as a logical decoding message with the prefix `sidecache` (wal-emit.ts). */
  publish(payload: string): Promise<void> {
    return this.#emitter.emit(payload);
  }

  close(graceMs: Millis): Promise<void> {
    return this.#emitter.close(graceMs);
  }

  async subscribe(onMessage: (payload: Buffer | string) => void, onLost: (reason: string) => void): Promise<Subscription> {
    const options = this.#options;
    const client = new pg.Client({
      connectionString: options.url,
      connectionTimeoutMillis: options.connectTimeoutMs,
      application_name: 'sidecache invalidation (wal)',
      keepAlive: true,
      replication: 'database',
    } as pg.ClientConfig);
    const connection = client.connection as unknown as CopyBothConnection;
    let streaming = false;
    let early: string | undefined;
    let over = false;
    let heartbeat: NodeJS.Timeout | undefined;
    const end = (): void => {
      over = true;
      if (heartbeat !== undefined) clearInterval(heartbeat);
      connection.stream.destroy();
      client.end().catch(() => undefined);
    };
    const lose = (reason: string): void => {
      if (over) return;
      if (!streaming) return void (early ??= reason);
      end();
      onLost(reason);
    };
    client.on('error', (err) => lose(err.message));
    client.on('end', () => lose('the connection ended'));

    const stream = new WalStream(
      options,
      (touched) => onMessage(payloadOf(touched, options.maxMessageBytes)),
      onMessage,
      (chunk) => {
        if (!over) connection.sendCopyFromChunk(chunk);
      },
    );
    connection.on('copyData', ({ chunk }) => {
      if (!over) stream.receive(chunk);
    });
    let resumed = false;
    const ready = async (): Promise<void> => {
      await client.connect();
      await ensurePublication(client, options.publication, options.tables, options.createPublication);
      const slot = await openSlot(client, options.slot);
      resumed = slot.resumed;
      stream.confirmed = slot.from;
      const started = new Promise<void>((resolve) => connection.once('replicationStart', resolve));
      const publication = pg.escapeLiteral(pg.escapeIdentifier(options.publication));
      // pgoutput refuses options it does not know: `messages` only where it exists (PostgreSQL 14+).
      const messages = (await serverVersion(client)) >= MIN_MESSAGES_VERSION ? ", messages 'true'" : '';
      // Resolves only when the stream ends; an error before it started fails the attempt at once, after it is a loss.
      const ended = client.query(
        `START_REPLICATION SLOT ${pg.escapeIdentifier(slot.name)} LOGICAL 0/0 (proto_version '1', publication_names ${publication}${messages})`,
      );
      ended.then(
        () => lose('the replication stream ended'),
        (err: Error) => lose(`the replication stream failed: ${err.message}`),
      );
      await Promise.race([
        started,
        ended.then(() => {
          throw new Error('the replication stream ended before it started');
        }),
      ]);
    };
    try {
      await within(ready(), options.connectTimeoutMs, 'connecting and starting replication', end);
    } catch (err) {
      if (!over) end();
      throw err;
    }
    if (over || early !== undefined) {
      end();
      throw new Error(early ?? 'the connection closed while starting replication');
    }
    streaming = true;
    heartbeat = stream.heartbeat(lose);
    return {
      resumed,
      close: async (graceMs) => {
        if (over) return;
        over = true;
        clearInterval(heartbeat);
        // Terminate ends the walsender, and with it a temporary slot; a half-open socket never answers.
        await within(client.end(), graceMs, 'closing', () => connection.stream.destroy()).catch(() => connection.stream.destroy());
      },
    };
  }
}

/** `{"tables":[…]}` for a commit, or a flush when that cannot be told or would not fit in a message. */
export function payloadOf(touched: Touched, maxMessageBytes: Bytes): string {
  if (touched.all) return '{"all":true}';
  const payload = JSON.stringify({ tables: touched.tables });
  return Buffer.byteLength(payload) > maxMessageBytes ? '{"all":true}' : payload;
}

/** `server_version_num` (https://www.postgresql.org/docs/current/runtime-config-preset.html), as a walsender answers SHOW. */
async function serverVersion(client: pg.Client): Promise<number> {
  const { rows } = await client.query<{ server_version_num: string }>('SHOW server_version_num');
  return Number(rows[0]!.server_version_num);
}

/**
 * One replication stream's state: hands each commit's tables and each sidecache message over,
 * confirms what was applied, and answers the server, so a slot never holds WAL for what sidecache
 * already has.
 */
class WalStream {
  readonly #reader = new PgOutputReader();
  readonly #options: PostgresWalOptions;
  readonly #onCommit: (touched: Touched) => void;
  readonly #onPayload: (payload: Buffer) => void;
  readonly #send: (chunk: Buffer) => void;
  /** Everything up to here is applied to the store: what the status updates confirm. */
  confirmed: Lsn = 0n;
  /** Set by every message from the server; the heartbeat clears it when it asks for an answer. */
  #heard = true;

  constructor(options: PostgresWalOptions, onCommit: (touched: Touched) => void, onPayload: (payload: Buffer) => void, send: (chunk: Buffer) => void) {
    this.#options = options;
    this.#onCommit = onCommit;
    this.#onPayload = onPayload;
    this.#send = send;
  }

  receive(chunk: Buffer): void {
    this.#heard = true;
    const message = decodeReplication(chunk);
    if (message.kind === 'data') {
      const event = this.#reader.read(message.data);
      if (event === undefined) return;
      if (event.kind === 'unreadable') return this.#onCommit({ all: true });
      if (event.kind === 'message') {
        // A copy: the chunk is a view of the client's read buffer. The runner refuses it by size before decoding.
        if (event.prefix === WAL_MESSAGE_PREFIX) this.#onPayload(Buffer.from(event.content));
        return;
      }
      // Applied before it is confirmed: a named slot resumes from the first commit not applied.
      if (event.touched.all || event.touched.tables.length > 0) this.#onCommit(event.touched);
      if (event.endLsn > this.confirmed) this.confirmed = event.endLsn;
      this.#lag(message.walEnd);
    } else if (message.kind === 'keepalive') {
      // Between transactions every commit sent so far is applied: the slot may move to the server's end.
      if (!this.#reader.inTransaction && message.walEnd > this.confirmed) this.confirmed = message.walEnd;
      this.#lag(message.walEnd);
      if (message.replyNow) this.#send(standbyStatus(this.confirmed, Date.now(), false));
    }
  }

  /**
   * Every `heartbeatMs` a status update that asks for a reply: it confirms what was applied (the
   * server may then recycle that WAL) and proves the connection carries both ways; nothing heard
   * from the server by the next beat is a lost connection (TCP keepalive takes minutes to tell).
   */
  heartbeat(lose: (reason: string) => void): NodeJS.Timeout {
    const timer = setInterval(() => {
      if (!this.#heard) return lose(`no answer to a replication status update within ${this.#options.heartbeatMs} ms`);
      this.#heard = false;
      this.#send(standbyStatus(this.confirmed, Date.now(), true));
    }, this.#options.heartbeatMs);
    timer.unref();
    return timer;
  }

  #lag(walEnd: Lsn): void {
    if (this.confirmed > 0n && walEnd >= this.confirmed) this.#options.onLag?.(Number(walEnd - this.confirmed));
  }
}

/**
 * The slot to stream from: a named one, created when missing and resumed from what it confirmed
 * when it exists (nothing committed meanwhile is lost), or a temporary one of this connection,
 * which the server drops when the connection ends, so nothing is retained once sidecache is gone.
 * https://www.postgresql.org/docs/current/protocol-replication.html#PROTOCOL-REPLICATION-CREATE-REPLICATION-SLOT
 */
async function openSlot(client: pg.Client, named: string | undefined): Promise<{ name: string; resumed: boolean; from: Lsn }> {
  if (named !== undefined) {
    const { rows } = await client.query<{ lsn: string | null }>(
      `SELECT confirmed_flush_lsn::text AS lsn FROM pg_catalog.pg_replication_slots WHERE slot_name = ${pg.escapeLiteral(named)}`,
    );
    if (rows.length > 0) return { name: named, resumed: true, from: rows[0]!.lsn === null ? 0n : parseLsn(rows[0]!.lsn) };
  }
  const name = named ?? `sidecache_${randomBytes(8).toString('hex')}`;
  const { rows } = await client.query<{ consistent_point: string }>(
    `CREATE_REPLICATION_SLOT ${pg.escapeIdentifier(name)}${named === undefined ? ' TEMPORARY' : ''} LOGICAL pgoutput NOEXPORT_SNAPSHOT`,
  );
  return { name, resumed: false, from: parseLsn(rows[0]!.consistent_point) };
}
