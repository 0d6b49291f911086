import http from 'node:http';
import { describe, expect, it } from 'vitest';
import { heldBodyBytes } from '../../../src/upstreams/http/body-tee.js';
import { baseKey } from '../../../src/upstreams/http/key.js';
import { useHttpSetup } from '../../helpers/http-setup.js';

/** What is left of a body, read to its end. */
async function readRest(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<string> {
  let rest = '';
  for (let r = await reader.read(); !r.done; r = await reader.read()) rest += Buffer.from(r.value).toString();
  return rest;
}
import { gate, WAIT_MS, waitFor } from '../../helpers/wait.js';

const setup = useHttpSetup();
const MiB = 1024 * 1024;

/** Fails after WAIT_MS with `what`: only bounds a failure, a passing test never waits for it. */
function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), WAIT_MS)));
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/** A client that sends a GET, receives the head and then never reads the body. */
function neverReads(url: string): { head: Promise<http.IncomingMessage>; destroy(): void } {
  const req = http.get(url, { agent: false });
  req.on('error', () => {});
  const head = new Promise<http.IncomingMessage>((resolve) =>
    req.on('response', (res) => {
      res.pause();
      resolve(res);
    }),
  );
  return { head, destroy: () => req.destroy() };
}

/** An origin answer of `size` bytes of `fill`, with Content-Length unless `chunked`. */
function big(size: number, options: { chunked?: boolean; cacheControl?: string } = {}): (res: http.ServerResponse) => void {
  const part = Buffer.alloc(256 * 1024, 'x');
  return (res) => {
    res.writeHead(200, { 'cache-control': options.cacheControl ?? 'max-age=60', ...(options.chunked !== true && { 'content-length': String(size) }) });
    let sent = 0;
    const pump = (): void => {
      while (sent < size) {
        const n = Math.min(part.length, size - sent);
        sent += n;
        if (!res.write(n === part.length ? part : part.subarray(0, n))) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  };
}

async function bodyLength(url: string): Promise<{ length: number; cacheStatus: string | null }> {
  const res = await fetch(url);
  return { length: (await res.arrayBuffer()).byteLength, cacheStatus: res.headers.get('cache-status') };
}

describe('http fills are read at the origin pace, not one client', () => {
  it('a leader whose client never reads does not delay a second client of the same key', async () => {
    const size = 32 * MiB;
    const { origin, server, base } = await setup((_req, res) => big(size)(res), '', 'cache: { maxEntryBytes: 64MiB }\n');
    const leader = neverReads(`${base}/slow`);
    try {
      await within(leader.head, "the leader's head");
      await waitFor(() => origin.calls('/slow') === 1, 'the fill at the origin');
      const second = await within(bodyLength(`${base}/slow`), 'the second client to get the whole body');
      expect(second.length).toBe(size);
      expect(origin.calls('/slow')).toBe(1);
      await waitFor(() => server.store.size === 1, 'the entry stored');
    } finally {
      leader.destroy();
    }
  });

  it('clients that never read do not hold the upstream connections other misses need', async () => {
    const size = 8 * MiB;
    const { origin, server, base } = await setup(
      (req, res) => (req.url === '/small' ? res.writeHead(200, { 'cache-control': 'max-age=60' }).end('small') : big(size)(res)),
      '    connections: 2\n',
      'cache: { maxEntryBytes: 16MiB }\n',
    );
    const stuck = ['/a', '/b', '/c'].map((path) => neverReads(`${base}${path}`));
    try {
      await within(Promise.all(stuck.map((c) => c.head)), 'every head');
      expect(
        await within(
          fetch(`${base}/small`).then((r) => r.text()),
          'another miss to be answered',
        ),
      ).toBe('small');
      await waitFor(() => server.store.size === 4, 'every entry stored');
      expect(origin.seen.length).toBe(4);
    } finally {
      for (const c of stuck) c.destroy();
    }
  });

  it('a waiter starts receiving bytes before the origin has finished', async () => {
    const held = gate();
    const { origin, base } = await setup((_req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': '10' });
      res.write('first');
      void held.promise.then(() => res.end('-last'));
    });
    try {
      const leader = await fetch(`${base}/gated`);
      await waitFor(() => origin.calls('/gated') === 1, 'the fill at the origin');
      const waiter = await within(fetch(`${base}/gated`), "the waiter's head");
      expect(waiter.headers.get('cache-status')).toMatch(/collapsed/);
      const reader = waiter.body!.getReader();
      const first = await within(reader.read(), "the waiter's first bytes");
      expect(Buffer.from(first.value!).toString()).toBe('first');
      expect(held.released).toBe(false);
      held.release();
      expect(await readRest(reader)).toBe('-last');
      expect(await leader.text()).toBe('first-last');
      expect(origin.calls('/gated')).toBe(1);
    } finally {
      held.release();
    }
  });

  it('a waiter already receiving bytes is not cut by the wait bound (connectTimeout + headersTimeout)', async () => {
    const held = gate();
    const { origin, server, base } = await setup((_req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': '10' });
      res.write('first');
      void held.promise.then(() => res.end('-last'));
    }, '    connectTimeout: 50ms\n    headersTimeout: 50ms\n');
    try {
      const leader = await fetch(`${base}/bound`);
      await waitFor(() => origin.calls('/bound') === 1, 'the fill at the origin');
      const waiter = await within(fetch(`${base}/bound`), "the waiter's head");
      const reader = waiter.body!.getReader();
      expect(Buffer.from((await within(reader.read(), 'the first bytes')).value!).toString()).toBe('first');
      // The waiter's bound on the fill passes (it stops counting as a waiter) while the body is held.
      await waitFor(() => (server.store.flightOf(baseKey('api', '/bound'))?.waiters ?? 0) === 0, 'the wait bound to pass');
      held.release();
      expect(await readRest(reader)).toBe('-last');
      expect(await leader.text()).toBe('first-last');
      expect(origin.calls('/bound')).toBe(1);
    } finally {
      held.release();
    }
  });

  it('a request that joins a fill after an invalidation does not stream the response that predates it', async () => {
    const held = gate();
    const { origin, server, base } = await setup((_req, res, n) => {
      res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': '6' });
      if (n > 1) return void res.end(`call ${n}`);
      res.write('ca');
      void held.promise.then(() => res.end('ll 1'));
    });
    try {
      const leader = await fetch(`${base}/inv`);
      await waitFor(() => origin.calls('/inv') === 1, 'the fill at the origin');
      expect((await fetch(`${base}/inv`, { method: 'PURGE' })).status).toBe(200);
      const waiter = fetch(`${base}/inv`).then((r) => r.text());
      await waitFor(() => server.store.flightOf(baseKey('api', '/inv'))?.waiters === 1, 'the request to join the fill');
      held.release();
      expect(await leader.text()).toBe('call 1');
      expect(await waiter).toBe('call 2');
      expect(origin.calls('/inv')).toBe(2);
    } finally {
      held.release();
    }
  });

  it('a body larger than maxEntryBytes reaches the leader and a waiter in full, and nothing is stored', async () => {
    const size = 3 * MiB;
    for (const chunked of [false, true]) {
      const { origin, server, base } = await setup((_req, res) => big(size, { chunked })(res), '', 'cache: { maxEntryBytes: 1MiB }\n');
      const [a, b] = await Promise.all([bodyLength(`${base}/huge`), bodyLength(`${base}/huge`)]);
      expect([a.length, b.length]).toEqual([size, size]);
      expect(server.store.size).toBe(0);
      expect(origin.calls('/huge')).toBeGreaterThanOrEqual(1);
    }
  });

  it('many clients that never read a large body make sidecache hold about one copy of it', async () => {
    const size = 8 * MiB;
    const { origin, server, base } = await setup((_req, res) => big(size)(res), '', 'cache: { maxEntryBytes: 16MiB }\n');
    const clients = Array.from({ length: 30 }, () => neverReads(`${base}/many`));
    try {
      await within(Promise.all(clients.map((c) => c.head)), 'every head');
      await waitFor(() => server.store.size === 1, 'the entry stored while nobody reads');
      expect(origin.calls('/many')).toBe(1);
      // The fill's buffer is the stored body itself: every client reads the one copy.
      expect(heldBodyBytes()).toBeLessThanOrEqual(size);
      expect(server.store.bytes).toBeLessThan(size + 64 * 1024);
    } finally {
      for (const c of clients) c.destroy();
    }
    await waitFor(() => heldBodyBytes() === 0, 'the fill buffers released once the clients left');
  });

  it('a GET that waits on a HEAD leader gets the whole body, streamed from the fill', async () => {
    const held = gate();
    const { origin, base } = await setup((_req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=60', 'content-length': '10' });
      res.write('first');
      void held.promise.then(() => res.end('-last'));
    });
    try {
      const head = await within(
        new Promise<http.IncomingMessage>((resolve, reject) => http.request(`${base}/hg`, { method: 'HEAD', agent: false }, resolve).on('error', reject).end()),
        'the HEAD answer',
      );
      expect(head.statusCode).toBe(200);
      const waiter = within(
        fetch(`${base}/hg`).then((r) => r.text()),
        "the waiter's body",
      );
      await waitFor(() => origin.calls('/hg') === 1, 'one upstream request');
      held.release();
      expect(await waiter).toBe('first-last');
      expect(origin.seen.map((r) => r.method)).toEqual(['GET']);
    } finally {
      held.release();
    }
  });

  it('a HEAD leader gets the head at once and the fill still stores the body', async () => {
    const size = 2 * MiB;
    const { origin, server, base } = await setup((_req, res) => big(size)(res));
    const head = await within(
      new Promise<http.IncomingMessage>((resolve, reject) => http.request(`${base}/h`, { method: 'HEAD', agent: false }, resolve).on('error', reject).end()),
      'the HEAD answer',
    );
    expect([head.statusCode, head.headers['content-length']]).toEqual([200, String(size)]);
    await waitFor(() => server.store.size === 1, 'the entry stored');
    expect((await bodyLength(`${base}/h`)).length).toBe(size);
    expect(origin.seen.map((r) => r.method)).toEqual(['GET']);
  });
});
