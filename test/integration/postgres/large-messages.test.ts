import { createHash } from 'node:crypto';
import net from 'node:net';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bind, describePortal, execute, i32, parse, query, readMessages, startup, sync } from '../../helpers/pg-bytes.js';
import { connect, PG, pgUnreachable, rawSocket } from '../../helpers/pg.js';
import { metric, startSidecache } from '../../helpers/sidecache.js';
import { waitFor } from '../../helpers/wait.js';
import type { SidecacheServer } from '../../../src/server.js';

const unreachable = await pgUnreachable();

const MiB = 1024 * 1024;
/** Results up to this size are stored; the 24 MiB one is over it and streams through. */
const CACHE = 'cache: { maxBytes: 256MiB, maxEntryBytes: 20MiB }\n';

/**
 * A raw session's answers, read as they come: every chunk kept in a list (a 16 MiB answer is not
 * re-copied per chunk), message headers followed to count ReadyForQuery.
 */
class Answers {
  #chunks: Buffer[] = [];
  received = 0;
  /** Where the next message header starts, in the bytes received since the last `take`. */
  #next = 0;
  #readies = 0;

  constructor(socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.#chunks.push(chunk);
      this.received += chunk.length;
      while (this.received >= this.#next + 5) {
        if (this.#byteAt(this.#next) === 0x5a) this.#readies++;
        this.#next += 1 + this.#int32At(this.#next + 1);
      }
    });
  }

  /** The bytes up to the `ready`-th ReadyForQuery since the last call, once they are all in (nothing may follow them). */
  async take(ready: number): Promise<Buffer> {
    await waitFor(() => this.#readies >= ready && this.received >= this.#next, `${ready} ReadyForQuery`, 60_000);
    const all = Buffer.concat(this.#chunks);
    this.#chunks = [];
    this.received = 0;
    this.#next = 0;
    this.#readies = 0;
    return all;
  }

  #byteAt(at: number): number {
    for (const chunk of this.#chunks) {
      if (at < chunk.length) return chunk[at]!;
      at -= chunk.length;
    }
    throw new RangeError('past the end');
  }

  #int32At(at: number): number {
    return Buffer.from([0, 1, 2, 3].map((i) => this.#byteAt(at + i))).readInt32BE(0);
  }
}

/** A raw session, logged in, with its answers read as they come. */
async function session(port: number, host = '127.0.0.1'): Promise<{ socket: net.Socket; answers: Answers }> {
  const socket = await rawSocket(port, host);
  const answers = new Answers(socket);
  socket.write(startup({ user: PG.user, database: PG.database }));
  await answers.take(1);
  return { socket, answers };
}

const batch = (sql: string) => Buffer.concat([parse('', sql), bind('', []), describePortal(), execute(), sync()]);
/** Two answers in one buffer, cut after the first ReadyForQuery. */
function afterFirstReady(bytes: Buffer): [Buffer, Buffer] {
  let at = 0;
  while (bytes[at] !== 0x5a) at += 1 + bytes.readInt32BE(at + 1);
  at += 6;
  return [bytes.subarray(0, at), bytes.subarray(at)];
}

const codes = (bytes: Buffer) =>
  readMessages(bytes)
    .map((m) => m.code)
    .join('');

describe.skipIf(unreachable !== undefined)('postgres listener: large messages (issue 15 point 4)', () => {
  let server: SidecacheServer;
  let port: number;
  let direct: { socket: net.Socket; answers: Answers };
  const clients: pg.Client[] = [];
  const sockets: net.Socket[] = [];

  beforeAll(async () => {
    server = await startSidecache(
      `${CACHE}postgres:\n  - name: main\n    listen: "127.0.0.1:0"\n    upstream: "postgres://${PG.host}:${PG.port}?sslmode=disable"\n`,
      {
        planWaitMs: 10_000,
      },
    );
    port = server.postgresListeners[0]!.address.port;
    direct = await session(PG.port, PG.host);
    sockets.push(direct.socket);
  });
  afterAll(async () => {
    for (const c of clients) await c.end().catch(() => undefined);
    for (const s of sockets) s.destroy();
    await server?.stop(100);
  });

  /** The answer to `bytes` from PostgreSQL itself. */
  async function fromPostgres(bytes: Buffer): Promise<Buffer> {
    direct.socket.write(bytes);
    return direct.answers.take(1);
  }

  it('a 16 MiB parameter reaches the server whole, as bytea (binary) and as text, and its answer is cached', async () => {
    const client = await connect(port);
    clients.push(client);
    const value = Buffer.alloc(16 * MiB);
    for (let i = 0; i < value.length; i += 4096) value.writeUInt32BE(i, i);
    const md5 = createHash('md5').update(value).digest('hex');
    const hitsBefore = await metric(server, 'sidecache_requests_total', { protocol: 'postgres', listener: 'main', result: 'hit' });
    for (let i = 0; i < 2; i++) {
      const { rows } = await client.query('SELECT md5($1::bytea) AS m, length($1::bytea) AS n', [value]);
      expect(rows[0]).toEqual({ m: md5, n: 16 * MiB });
    }
    const text = value.toString('hex', 0, 8 * MiB);
    const { rows } = await client.query('SELECT md5($1::text) AS m, length($1::text) AS n', [text]);
    expect(rows[0]).toEqual({ m: createHash('md5').update(text).digest('hex'), n: 16 * MiB });
    expect(await metric(server, 'sidecache_requests_total', { protocol: 'postgres', listener: 'main', result: 'hit' })).toBe(hitsBefore + 1);
  });

  it('a 16 MiB result comes byte for byte as PostgreSQL sends it, is stored, and its hit is the same bytes', async () => {
    const request = batch("SELECT 7 AS n, repeat(md5('large result'), 524288) AS v");
    const expected = await fromPostgres(request);
    expect(codes(expected)).toBe('12TDCZ');
    const via = await session(port);
    sockets.push(via.socket);
    via.socket.write(request);
    const miss = await via.answers.take(1);
    expect(miss.equals(expected)).toBe(true);
    const hitsBefore = await metric(server, 'sidecache_requests_total', { protocol: 'postgres', listener: 'main', result: 'hit' });
    via.socket.write(request);
    const hit = await via.answers.take(1);
    expect(hit.equals(expected)).toBe(true);
    expect(await metric(server, 'sidecache_requests_total', { protocol: 'postgres', listener: 'main', result: 'hit' })).toBe(hitsBefore + 1);
  });

  it('a result over maxEntryBytes streams through byte for byte and is not stored', async () => {
    const request = batch("SELECT repeat(md5('over the limit'), 786432) AS v");
    const expected = await fromPostgres(request);
    const via = await session(port);
    sockets.push(via.socket);
    const entries = server.store.size;
    const missesBefore = await metric(server, 'sidecache_requests_total', { protocol: 'postgres', listener: 'main', result: 'miss' });
    for (let i = 0; i < 2; i++) {
      via.socket.write(request);
      expect((await via.answers.take(1)).equals(expected)).toBe(true);
    }
    expect(server.store.size).toBe(entries);
    expect(await metric(server, 'sidecache_requests_total', { protocol: 'postgres', listener: 'main', result: 'miss' })).toBe(missesBefore + 2);
  });

  it('a 16 MiB row of COPY … TO STDOUT (CopyData) comes byte for byte', async () => {
    const request = query("COPY (SELECT repeat(md5('copy out'), 524288)) TO STDOUT");
    const expected = await fromPostgres(request);
    expect(codes(expected)).toBe('HdcCZ');
    const via = await session(port);
    sockets.push(via.socket);
    via.socket.write(request);
    expect((await via.answers.take(1)).equals(expected)).toBe(true);
  });

  it('keeps the 1 GB message limit: a header announcing more is refused with 08P01 before its body comes', async () => {
    const via = await session(port);
    sockets.push(via.socket);
    const closed = new Promise<void>((resolve) => via.socket.once('close', () => resolve()));
    via.socket.write(Buffer.concat([Buffer.from('B'), i32(0x40000000 + 4)]));
    await closed;
    const answer = await via.answers.take(0);
    const error = readMessages(answer).find((m) => m.code === 'E');
    expect(error?.body.toString()).toContain('C08P01');
    expect(error?.body.toString()).toContain('invalid message length');
  });
});

/**
 * A TCP proxy between sidecache and PostgreSQL that, once armed, lets `bytes` more of the
 * server's bytes through and holds the rest until released: what the client has meanwhile is
 * what sidecache forwarded before the message was whole. It counts the bytes sent to the server.
 */
async function gateProxy(): Promise<{ port: number; readonly toServer: number; arm(bytes: number): void; release(): void; close(): Promise<void> }> {
  let budget = Infinity;
  let toServer = 0;
  const held: { to: net.Socket; chunk: Buffer }[] = [];
  const sockets = new Set<net.Socket>();
  const listener = net.createServer((client) => {
    const server = net.connect(PG.port, PG.host);
    for (const s of [client, server]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => (client.destroy(), server.destroy()));
    }
    client.on('data', (chunk: Buffer) => {
      toServer += chunk.length;
      server.write(chunk);
    });
    server.on('data', (chunk: Buffer) => {
      if (held.length > 0 || chunk.length > budget) {
        const pass = Math.max(0, budget);
        if (pass > 0) client.write(chunk.subarray(0, pass));
        budget = 0;
        held.push({ to: client, chunk: chunk.subarray(pass) });
        return;
      }
      budget -= chunk.length;
      client.write(chunk);
    });
  });
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  return {
    port: (listener.address() as net.AddressInfo).port,
    get toServer() {
      return toServer;
    },
    arm: (bytes) => void (budget = bytes),
    release: () => {
      budget = Infinity;
      for (const { to, chunk } of held.splice(0)) to.write(chunk);
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => listener.close(() => resolve()));
    },
  };
}

describe.skipIf(unreachable !== undefined)('postgres listener: a large DataRow reaches the client as it arrives', () => {
  it('forwards the first MiB of a 16 MiB row while the rest is still on its way, then stores the whole and hits', async () => {
    const proxy = await gateProxy();
    const server = await startSidecache(
      `${CACHE}postgres:\n  - name: main\n    listen: "127.0.0.1:0"\n    upstream: "postgres://127.0.0.1:${proxy.port}?sslmode=disable"\n`,
      {
        planWaitMs: 10_000,
      },
    );
    const port = server.postgresListeners[0]!.address.port;
    const via = await session(port);
    try {
      const sql = "SELECT repeat(md5('streamed'), $1::int) AS v";
      const request = (n: number) => Buffer.concat([parse('', sql), bind('', [String(n)]), describePortal(), execute(), sync()]);
      // The plan (and the catalog questions it needs) first, with a small value.
      via.socket.write(request(1));
      await via.answers.take(1);
      proxy.arm(MiB);
      via.socket.write(request(524288));
      await waitFor(() => via.answers.received >= MiB / 2, 'half a MiB of the row before the rest reached sidecache', 20_000);
      proxy.release();
      const miss = await via.answers.take(1);
      expect(codes(miss)).toBe('12TDCZ');
      expect(readMessages(miss).find((m) => m.code === 'D')!.body.length).toBe(2 + 4 + 16 * MiB);
      via.socket.write(request(524288));
      const hit = await via.answers.take(1);
      expect(hit.equals(miss)).toBe(true);
      expect(await metric(server, 'sidecache_requests_total', { protocol: 'postgres', listener: 'main', result: 'hit' })).toBe(1);
    } finally {
      via.socket.destroy();
      await server.stop(100);
      await proxy.close();
    }
  });
});

describe.skipIf(unreachable !== undefined)('postgres listener: a Bind longer than maxEntryBytes goes upstream as it arrives', () => {
  const sql = 'SELECT md5($1::text) AS m, length($1::text) AS n';
  const value = (size: number, seed: string) => seed.repeat(Math.ceil(size / seed.length)).slice(0, size);

  it('forwards the first MiB of a 24 MiB Bind before the client sent the rest, answers it right, and stores nothing', async () => {
    const proxy = await gateProxy();
    const server = await startSidecache(
      `${CACHE}postgres:\n  - name: main\n    listen: "127.0.0.1:0"\n    upstream: "postgres://127.0.0.1:${proxy.port}?sslmode=disable"\n`,
      {
        planWaitMs: 10_000,
      },
    );
    const port = server.postgresListeners[0]!.address.port;
    const via = await session(port);
    try {
      via.socket.write(Buffer.concat([parse('', sql), bind('', ['x']), describePortal(), execute(), sync()]));
      await via.answers.take(1);
      const text = value(24 * MiB, 'abcdefghij');
      const request = Buffer.concat([parse('', sql), bind('', [text]), describePortal(), execute(), sync()]);
      const before = proxy.toServer;
      via.socket.write(request.subarray(0, 2 * MiB));
      await waitFor(() => proxy.toServer - before >= MiB, 'a MiB of the Bind upstream before the client sent the rest', 20_000);
      via.socket.write(request.subarray(2 * MiB));
      const answer = readMessages(await via.answers.take(1));
      expect(answer.map((m) => m.code).join('')).toBe('12TDCZ');
      const row = answer.find((m) => m.code === 'D')!.body;
      expect(row.toString('latin1')).toContain(createHash('md5').update(text).digest('hex'));
      expect(server.store.size).toBe(1);
      expect(await metric(server, 'sidecache_requests_total', { protocol: 'postgres', listener: 'main', result: 'bypass' })).toBe(1);
    } finally {
      via.socket.destroy();
      await server.stop(100);
      await proxy.close();
    }
  });

  it('keeps statements in step: a large Bind of an unnamed statement answered from the cache, in pipelines, by pg', async () => {
    const server = await startSidecache(
      `${CACHE}postgres:\n  - name: main\n    listen: "127.0.0.1:0"\n    upstream: "postgres://${PG.host}:${PG.port}?sslmode=disable"\n`,
      {
        planWaitMs: 10_000,
      },
    );
    const port = server.postgresListeners[0]!.address.port;
    const via = await session(port);
    const client = await connect(port);
    try {
      const small = Buffer.concat([parse('', sql), bind('', ['y']), describePortal(), execute(), sync()]);
      via.socket.write(small);
      await via.answers.take(1);
      via.socket.write(small);
      const hit = await via.answers.take(1);
      expect(await metric(server, 'sidecache_requests_total', { protocol: 'postgres', listener: 'main', result: 'hit' })).toBe(1);
      // The unnamed statement exists only in sidecache's books now: the Bind that follows needs it upstream.
      const text = value(21 * MiB, 'klmnopq');
      const md5 = createHash('md5').update(text).digest('hex');
      via.socket.write(Buffer.concat([bind('', [text]), describePortal(), execute(), sync(), small]));
      const [big, again] = afterFirstReady(await via.answers.take(2));
      expect(codes(big)).toBe('2TDCZ');
      expect(big.toString('latin1')).toContain(md5);
      expect(again.equals(hit)).toBe(true);
      for (let i = 0; i < 2; i++) {
        const { rows } = await client.query(sql, [text]);
        expect(rows[0]).toEqual({ m: md5, n: 21 * MiB });
      }
    } finally {
      via.socket.destroy();
      await client.end();
      await server.stop(100);
    }
  });
});
