/**
 * Issue 15: an autocommit write through the listener costs what the proxy must pay and no more:
 * its Query goes upstream in one write, nothing else goes upstream for it, and its answer
 * (CommandComplete and the ReadyForQuery held until the invalidation is published) reaches the
 * client in one write. The ReadyForQuery used to follow in a write of its own, waking the client
 * twice per write. Writes are counted on the listener's real sockets, found through Node's
 * `net.server.socket` / `net.client.socket` diagnostics channels. And the write is invalidated
 * (and published) once: its statement's end is its transaction's end.
 */
import diagnostics from 'node:diagnostics_channel';
import type net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { PG, pgUnreachable, usePgFixture } from '../../helpers/pg.js';
import { query, readMessages } from '../../helpers/pg-bytes.js';
import { exchange, rawSession } from './raw-session.js';
import { channels, type InvalidationEvent } from '../../../src/events.js';
import { tableTag } from '../../../src/cache/tags.js';

const unreachable = await pgUnreachable();

/** Records what a socket hands to the kernel, one entry per write (each one system call). */
function recordWrites(socket: net.Socket): Buffer[] {
  const writes: Buffer[] = [];
  const s = socket as net.Socket & { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void };
  const write = s._write.bind(s);
  const writev = s._writev.bind(s);
  s._write = (chunk, ...rest) => {
    writes.push(Buffer.from(chunk as Buffer));
    write(chunk, ...rest);
  };
  s._writev = (chunks, ...rest) => {
    writes.push(Buffer.concat((chunks as { chunk: Buffer }[]).map((c) => c.chunk)));
    writev(chunks, ...rest);
  };
  return writes;
}

/** Whether `bytes` carry one of sidecache's own catalog questions (asked in band on a client's session). */
const isCatalogQuestion = (bytes: Buffer): boolean => bytes.includes('sidecache catalog question');

describe.skipIf(unreachable !== undefined)('a write through the listener (issue 15)', () => {
  const f = usePgFixture(
    'wrt',
    (t) => `CREATE TABLE ${t} (id int PRIMARY KEY, n int NOT NULL DEFAULT 0); INSERT INTO ${t} SELECT g FROM generate_series(1, 100) g`,
  );
  const unsubscribe: (() => void)[] = [];
  afterEach(() => {
    for (const u of unsubscribe.splice(0)) u();
  });

  it('sends its Query upstream in one write and its answer to the client in one write', async () => {
    const accepted: net.Socket[] = [];
    const connected: net.Socket[] = [];
    const onServer = ({ socket }: { socket: net.Socket }) => void (socket.localPort === f.port && accepted.push(socket));
    const onClient = ({ socket }: { socket: net.Socket }) => void connected.push(socket);
    diagnostics.subscribe('net.server.socket', onServer as (m: unknown) => void);
    diagnostics.subscribe('net.client.socket', onClient as (m: unknown) => void);
    unsubscribe.push(() => diagnostics.unsubscribe('net.server.socket', onServer as (m: unknown) => void));
    unsubscribe.push(() => diagnostics.unsubscribe('net.client.socket', onClient as (m: unknown) => void));
    const socket = await rawSession(f.port);
    try {
      expect(accepted).toHaveLength(1);
      const upstream = connected.filter((s) => s.remotePort === PG.port);
      expect(upstream).toHaveLength(1);
      const sql = (id: number) => query(`UPDATE ${f.table} SET n = n + 1 WHERE id = ${id}`);
      const write = (id: number) => exchange(socket, sql(id), 1);
      // The first write of a shape may ask the catalog what it reaches (in band, on this session).
      await write(1);
      const toClient = recordWrites(accepted[0]!);
      const toUpstream = recordWrites(upstream[0]!);
      const rounds = 20;
      const sent: Buffer[] = [];
      for (let i = 2; i < 2 + rounds; i++) {
        sent.push(sql(i));
        const answer = await write(i);
        expect(readMessages(answer).map((m) => m.code)).toEqual(['C', 'Z']);
      }
      // Every write's Query is one write of its own bytes. A catalog question of sidecache's own
      // may share the idle session meanwhile (one CI run counted one upstream write too many, not
      // reproduced since): it is told apart, printed, and at most one is allowed.
      const questions = toUpstream.filter(isCatalogQuestion);
      expect(toUpstream.filter((w) => !isCatalogQuestion(w))).toEqual(sent);
      expect(
        questions.length,
        `catalog questions during the writes: ${questions.map((q) => JSON.stringify(q.toString('latin1').slice(0, 400))).join('\n')}`,
      ).toBeLessThanOrEqual(1);
      expect(toClient).toHaveLength(rounds);
      expect((await f.direct.query(`SELECT sum(n)::int AS n FROM ${f.table}`)).rows[0].n).toBe(rounds + 1);
    } finally {
      socket.destroy();
    }
  });

  it('invalidates an autocommit write once, a write in a transaction block at its statement and at the end', async () => {
    const seen: InvalidationEvent[] = [];
    const onEvent = (m: unknown) => void seen.push(m as InvalidationEvent);
    channels.invalidation.subscribe(onEvent);
    unsubscribe.push(() => channels.invalidation.unsubscribe(onEvent));
    const socket = await rawSession(f.port);
    const mine = () => seen.filter((e) => e.target.tags?.includes(tableTag(f.table))).length;
    try {
      await exchange(socket, query(`UPDATE ${f.table} SET n = n + 1 WHERE id = 1`), 1);
      const before = mine();
      for (let id = 2; id < 7; id++) await exchange(socket, query(`UPDATE ${f.table} SET n = n + 1 WHERE id = ${id}`), 1);
      expect(mine() - before).toBe(5);
      // In a block, a concurrent reader may fill between the statement and the COMMIT: both invalidate.
      await exchange(socket, query('BEGIN'), 1);
      await exchange(socket, query(`UPDATE ${f.table} SET n = n + 1 WHERE id = 1`), 1);
      expect(mine() - before).toBe(6);
      await exchange(socket, query('COMMIT'), 1);
      expect(mine() - before).toBe(7);
      // A Query of two writes (one implicit transaction) is one text: its tables are invalidated once, together.
      await exchange(socket, query(`UPDATE ${f.table} SET n = n + 1 WHERE id = 1; UPDATE ${f.table} SET n = n + 1 WHERE id = 2`), 1);
      expect(mine() - before).toBe(8);
    } finally {
      socket.destroy();
    }
  });
});
