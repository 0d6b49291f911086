import { describe, expect, it } from 'vitest';
import { payloadOf } from '../../../../src/invalidation/buses/postgres-wal.js';
import { decodeReplication, type PgOutputEvent, PgOutputReader, standbyStatus } from '../../../../src/invalidation/buses/wal-protocol.js';

/** pgoutput messages, built by hand from the protocol page (not with the code under test). */
const begin = () => Buffer.concat([Buffer.from('B'), Buffer.alloc(8 + 8 + 4)]);
const commit = (end: bigint) => {
  const b = Buffer.alloc(1 + 1 + 8 + 8 + 8);
  b.write('C');
  b.writeBigUInt64BE(end, 10);
  return b;
};
const relation = (oid: number, ns: string, name: string) => {
  const head = Buffer.alloc(5);
  head.write('R');
  head.writeUInt32BE(oid, 1);
  return Buffer.concat([head, Buffer.from(`${ns}\0${name}\0`), Buffer.from([0x64, 0, 0])]);
};
const change = (kind: 'I' | 'U' | 'D', oid: number) => {
  const b = Buffer.alloc(5 + 3);
  b.write(kind);
  b.writeUInt32BE(oid, 1);
  return b;
};
const truncate = (...oids: number[]) => {
  const b = Buffer.alloc(6 + 4 * oids.length);
  b.write('T');
  b.writeUInt32BE(oids.length, 1);
  oids.forEach((oid, i) => b.writeUInt32BE(oid, 6 + 4 * i));
  return b;
};

/** What a Commit event says was touched (undefined for any other event). */
const touchedBy = (event: PgOutputEvent | undefined) => (event?.kind === 'commit' ? event.touched : undefined);

describe('PgOutputReader: which tables a commit touched', () => {
  it('buffers relations from Begin and hands them over at Commit, with the end LSN; names last across transactions', () => {
    const r = new PgOutputReader();
    r.read(begin());
    r.read(relation(16384, 'public', 'Items'));
    r.read(change('I', 16384));
    r.read(relation(16390, 'app', 'm_1'));
    r.read(change('U', 16390));
    r.read(change('D', 16384));
    expect(r.inTransaction).toBe(true);
    expect(r.read(commit(0x1_0000_0010n))).toEqual({ kind: 'commit', touched: { all: false, tables: ['Items', 'm_1'] }, endLsn: 0x1_0000_0010n });
    expect(r.inTransaction).toBe(false);
    r.read(begin());
    r.read(truncate(16384, 16390));
    expect(touchedBy(r.read(commit(0x20n)))).toEqual({ all: false, tables: ['Items', 'm_1'] });
  });

  it('a change to a relation it was never told of, or a message it does not know, makes the commit a flush', () => {
    const r = new PgOutputReader();
    r.read(begin());
    r.read(change('I', 99));
    expect(touchedBy(r.read(commit(1n)))).toEqual({ all: true });
    r.read(begin());
    r.read(Buffer.from('Zwhatever'));
    expect(touchedBy(r.read(commit(2n)))).toEqual({ all: true });
    r.read(begin());
    expect(touchedBy(r.read(commit(3n)))).toEqual({ all: false, tables: [] });
  });
});

/** A Logical Decoding Message of protocol version 1 (no xid): flags, LSN, prefix, length, content. */
const message = (transactional: boolean, prefix: string, content: Buffer) => {
  const head = Buffer.alloc(10);
  head.write('M');
  head[1] = transactional ? 1 : 0;
  head.writeBigUInt64BE(0x42n, 2);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(content.length);
  return Buffer.concat([head, Buffer.from(`${prefix}\0`), length, content]);
};

describe('PgOutputReader: logical decoding messages', () => {
  it('hands a message over at once, with its prefix and bytes, inside or outside a transaction, without touching the transaction', () => {
    const r = new PgOutputReader();
    const payload = Buffer.from('{"tags":["é"]}');
    expect(r.read(message(false, 'sidecache', payload))).toEqual({ kind: 'message', transactional: false, prefix: 'sidecache', content: payload });
    r.read(begin());
    r.read(relation(1, 'public', 'items'));
    r.read(change('I', 1));
    expect(r.read(message(true, 'other', Buffer.from('x')))).toEqual({ kind: 'message', transactional: true, prefix: 'other', content: Buffer.from('x') });
    expect(r.inTransaction).toBe(true);
    expect(touchedBy(r.read(commit(5n)))).toEqual({ all: false, tables: ['items'] });
    expect(r.read(message(false, '', Buffer.alloc(0)))).toEqual({ kind: 'message', transactional: false, prefix: '', content: Buffer.alloc(0) });
  });

  it('a message that cannot be read is unreadable outside a transaction and makes its transaction a flush inside one', () => {
    const r = new PgOutputReader();
    const whole = message(false, 'sidecache', Buffer.from('{"all":true}'));
    for (let cut = 1; cut < whole.length; cut++) expect(r.read(whole.subarray(0, cut))).toEqual({ kind: 'unreadable' });
    expect(r.read(Buffer.concat([whole, Buffer.from('x')]))).toEqual({ kind: 'unreadable' });
    r.read(begin());
    expect(r.read(whole.subarray(0, 12))).toBeUndefined();
    expect(touchedBy(r.read(commit(6n)))).toEqual({ all: true });
  });
});

describe('replication framing', () => {
  it('reads XLogData and keepalives, and writes a standby status update confirming one LSN', () => {
    const data = Buffer.alloc(25 + 3);
    data.write('w');
    data.writeBigUInt64BE(0x500n, 9);
    data.write('abc', 25);
    expect(decodeReplication(data)).toEqual({ kind: 'data', walEnd: 0x500n, data: Buffer.from('abc') });
    const keepalive = Buffer.alloc(18);
    keepalive.write('k');
    keepalive.writeBigUInt64BE(0x600n, 1);
    keepalive[17] = 1;
    expect(decodeReplication(keepalive)).toEqual({ kind: 'keepalive', walEnd: 0x600n, replyNow: true });
    expect(decodeReplication(Buffer.from('k'))).toEqual({ kind: 'unknown' });
    const status = standbyStatus(0x700n, 946_684_800_000 + 1, true);
    expect(status.length).toBe(34);
    expect(status.toString('latin1', 0, 1)).toBe('r');
    expect([status.readBigUInt64BE(1), status.readBigUInt64BE(9), status.readBigUInt64BE(17)]).toEqual([0x700n, 0x700n, 0x700n]);
    expect(status.readBigInt64BE(25)).toBe(1000n);
    expect(status[33]).toBe(1);
  });

  it('a commit naming more tables than fit in maxMessageBytes is sent as a flush, never refused', () => {
    expect(payloadOf({ all: false, tables: ['a', 'b'] }, 1024)).toBe('{"tables":["a","b"]}');
    expect(payloadOf({ all: false, tables: Array.from({ length: 200 }, (_v, i) => `table_${i}`) }, 1024)).toBe('{"all":true}');
    expect(payloadOf({ all: true }, 1024)).toBe('{"all":true}');
  });
});
