/**
 * The few bytes of PostgreSQL's streaming replication protocol the WAL bus reads and writes, and
 * the pgoutput messages it needs to know which tables a commit touched. Nothing here knows sockets.
 *
 * Replication messages inside CopyData:
 * https://www.postgresql.org/docs/current/protocol-replication.html#PROTOCOL-REPLICATION-START-REPLICATION
 * pgoutput (logical replication protocol version 1):
 * https://www.postgresql.org/docs/current/protocol-logicalrep-message-formats.html
 */

/** Write-ahead log location, a 64-bit byte position. */
export type Lsn = bigint;

/** What arrives in one CopyData of a START_REPLICATION stream. */
export type ReplicationMessage =
  /** XLogData ('w'): one pgoutput message; `walEnd` is the end of WAL on the server. */
  | { kind: 'data'; walEnd: Lsn; data: Buffer }
  /** Primary keepalive ('k'): `replyNow` asks for a status update at once (wal_sender_timeout is running out). */
  | { kind: 'keepalive'; walEnd: Lsn; replyNow: boolean }
  | { kind: 'unknown' };

export function decodeReplication(chunk: Buffer): ReplicationMessage {
  // 'w' Int64 walStart, Int64 walEnd, Int64 sendTime, Byte[n] data
  if (chunk[0] === 0x77 && chunk.length >= 25) return { kind: 'data', walEnd: chunk.readBigUInt64BE(9), data: chunk.subarray(25) };
  // 'k' Int64 walEnd, Int64 sendTime, Byte1 replyRequested
  if (chunk[0] === 0x6b && chunk.length >= 18) return { kind: 'keepalive', walEnd: chunk.readBigUInt64BE(1), replyNow: chunk[17] === 1 };
  return { kind: 'unknown' };
}

/** Microseconds between the Unix epoch and PostgreSQL's (2000-01-01 UTC). */
const PG_EPOCH_MS = 946_684_800_000;

/**
 * Standby status update ('r'): written, flushed and applied are all `lsn` (sidecache applies a
 * commit to its store before it confirms it, and keeps nothing on disk). `replyNow` asks the
 * server for a keepalive at once: the heartbeat's proof that the connection still carries both ways.
 */
export function standbyStatus(lsn: Lsn, nowMs: number, replyNow: boolean): Buffer {
  const out = Buffer.alloc(34);
  out[0] = 0x72;
  out.writeBigUInt64BE(lsn, 1);
  out.writeBigUInt64BE(lsn, 9);
  out.writeBigUInt64BE(lsn, 17);
  out.writeBigInt64BE(BigInt(Math.round(nowMs - PG_EPOCH_MS)) * 1000n, 25);
  out[33] = replyNow ? 1 : 0;
  return out;
}

/** What a commit touched: table names (pgoutput's relation names), or `all` when that cannot be told. */
export type Touched = { all: true } | { all: false; tables: string[] };

/**
 * What one pgoutput message amounts to: a transaction's end, with what it touched and its end LSN
 * (what may be confirmed once it is applied), or a Logical Decoding Message ('M', PostgreSQL 14+,
 * sent only with `messages 'true'`): what `pg_logical_emit_message` wrote, with its prefix. A
 * message that cannot be read is `unreadable`, outside a transaction (inside one its commit is a flush).
 */
export type PgOutputEvent =
  { kind: 'commit'; touched: Touched; endLsn: Lsn } | { kind: 'message'; transactional: boolean; prefix: string; content: Buffer } | { kind: 'unreadable' };

/**
 * Follows pgoutput's transactions: Relation messages name relation OIDs for the rest of the
 * stream; the relations of each change are buffered from Begin and handed over at Commit, with
 * the commit's end LSN (what may be confirmed once they are applied). A transaction rolled back
 * is never sent: pgoutput decodes committed transactions only.
 */
export class PgOutputReader {
  readonly #relations = new Map<number, string>();
  #open: Set<string> | undefined;
  /** Something in the open transaction could not be named: the safe answer is a flush. */
  #unknown = false;

  /** True between Begin and Commit. */
  get inTransaction(): boolean {
    return this.#open !== undefined;
  }

  /** Reads one pgoutput message; returns what a Commit closes or a Message carries, else undefined. */
  read(data: Buffer): PgOutputEvent | undefined {
    switch (data[0]) {
      case 0x42: // 'B' Begin
        this.#open = new Set();
        this.#unknown = false;
        return undefined;
      case 0x43: // 'C' Commit: Int8 flags, Int64 commit LSN, Int64 end LSN, Int64 commit time
        return this.#commit(data.readBigUInt64BE(10));
      case 0x52: // 'R' Relation: Int32 OID, String namespace, String name, …
        this.#relation(data);
        return undefined;
      case 0x49: // 'I' Insert
      case 0x55: // 'U' Update
      case 0x44: // 'D' Delete: each starts with Int32 relation OID
        this.#touch(data.readUInt32BE(1));
        return undefined;
      case 0x54: // 'T' Truncate: Int32 count, Int8 options, Int32 OID each
        for (let i = 0, n = data.readUInt32BE(1); i < n; i++) this.#touch(data.readUInt32BE(6 + 4 * i));
        return undefined;
      case 0x4d: // 'M' Message
        return this.#message(data);
      case 0x4f: // 'O' Origin
      case 0x59: // 'Y' Type: neither changes a row
        return undefined;
      default:
        // A message this reader does not know may change rows it cannot name.
        this.#unknown = true;
        return undefined;
    }
  }

  #commit(endLsn: Lsn): PgOutputEvent {
    const tables = [...(this.#open ?? [])];
    const unknown = this.#unknown || this.#open === undefined;
    this.#open = undefined;
    this.#unknown = false;
    return { kind: 'commit', touched: unknown ? { all: true } : { all: false, tables }, endLsn };
  }

  /**
   * 'M': Int8 flags (1: transactional), Int64 LSN, String prefix, Int32 length, Byte[n] content
   * (no Int32 xid: that comes only in streamed transactions, protocol version 2+). pgoutput sends a
   * transactional message inside its transaction once that committed (a rolled-back one is never
   * decoded), a non-transactional one as its WAL record is decoded, outside any transaction: both
   * are handed over at once. A message is never a row change: it does not touch the open transaction.
   */
  #message(data: Buffer): PgOutputEvent | undefined {
    const prefixEnd = data.indexOf(0, 10);
    const contentAt = prefixEnd + 5;
    const length = prefixEnd < 0 || data.length < contentAt ? -1 : data.readUInt32BE(prefixEnd + 1);
    if (length < 0 || data.length !== contentAt + length) {
      if (this.#open === undefined) return { kind: 'unreadable' };
      this.#unknown = true;
      return undefined;
    }
    return { kind: 'message', transactional: (data[1]! & 1) === 1, prefix: data.toString('utf8', 10, prefixEnd), content: data.subarray(contentAt) };
  }

  #relation(data: Buffer): void {
    const oid = data.readUInt32BE(1);
    const nsEnd = data.indexOf(0, 5);
    const nameEnd = data.indexOf(0, nsEnd + 1);
    if (nsEnd < 0 || nameEnd < 0) return void (this.#unknown = true);
    // The bare name, as the listener tags what it reads (cache/tags.ts tableTag drops the schema).
    this.#relations.set(oid, data.toString('utf8', nsEnd + 1, nameEnd));
  }

  #touch(oid: number): void {
    const name = this.#relations.get(oid);
    if (name === undefined || this.#open === undefined) this.#unknown = true;
    else this.#open.add(name);
  }
}
