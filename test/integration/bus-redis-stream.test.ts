import { afterEach, describe, expect, it } from 'vitest';
import type { SidecacheServer } from '../../src/server.js';
import { redisUnreachable } from '../helpers/redis.js';
import { metric, startSidecache } from '../helpers/sidecache.js';
import { waitFor } from '../helpers/wait.js';
import { type StreamEnv, streamEnv } from './stream-env.js';

const redisDown = await redisUnreachable();

/**
 * Issue 17 point 5: a Redis Streams bus is durable. What is added while it is down is applied
 * when it is back, without a flush; only a stream trimmed or deleted past the last applied entry
 * is a gap. Outages are made at a TCP proxy in front of the real Redis.
 */
describe.skipIf(redisDown !== undefined)('redis-stream bus', () => {
  let env: StreamEnv | undefined;
  let server: SidecacheServer | undefined;
  afterEach(async () => {
    await server?.stop(100);
    await env?.close();
    server = undefined;
    env = undefined;
  });

  /**
   * `whileDown: ttl:1h`: these tests store entries while the bus is down to see whether the
   * reconnect flushes them; under the default `bypass` nothing would be stored meanwhile.
   * `publish: false`: writers XADD, replicas do not publish their own invalidations here, so a
   * resume that lost nothing needs no flush (with `publish: true` it flushes: another replica's
   * outbox may hold what the stream never saw, stream-outbox-window.test.ts).
   */
  async function start(extra = ''): Promise<{ e: StreamEnv; s: SidecacheServer }> {
    const e = (env = await streamEnv());
    const keys = ['whileDown: "ttl:1h"', 'publish: false', extra].filter((k) => k !== '').join(', ');
    const s = (server = await startSidecache(`invalidation:\n  - ${e.entry(keys)}\n`));
    return { e, s };
  }
  const seed = (s: SidecacheServer) => {
    s.store.set('k:a', { body: Buffer.from('a'), ttlMs: 60_000, tags: ['table:accounts'] });
    s.store.set('k:b', { body: Buffer.from('b'), ttlMs: 60_000, tags: ['user:1'] });
    s.store.set('k:c', { body: Buffer.from('c'), ttlMs: 60_000, tags: ['other'] });
  };
  const gaps = (s: SidecacheServer, e: StreamEnv) => metric(s, 'sidecache_bus_gaps_total', { bus: e.bus });
  const connected = (s: SidecacheServer, e: StreamEnv) => metric(s, 'sidecache_bus_connected', { bus: e.bus });

  /** Drops the bus's connection and keeps it from coming back until `back()`. */
  async function outage(s: SidecacheServer, e: StreamEnv): Promise<{ back(): Promise<void> }> {
    e.proxy.refuse(true);
    e.proxy.cut();
    await waitFor(async () => (await connected(s, e)) === 0, 'the bus to notice the outage');
    // Ready all the same (issue 17: an outage degrades, it does not unready), naming the bus.
    const readyz = await fetch(`${s.adminUrl}/readyz`);
    expect(readyz.status).toBe(200);
    expect(await readyz.json()).toMatchObject({ ready: true, degraded: [expect.stringContaining(e.bus)] });
    return {
      back: async () => {
        e.proxy.refuse(false);
        await waitFor(async () => (await connected(s, e)) === 1, 'the bus to be back', 10_000);
      },
    };
  }

  it('applies JSON and table-list entries, counted by bus; is ready once started', async () => {
    const { e, s } = await start();
    expect(await connected(s, e)).toBe(1);
    expect((await fetch(`${s.adminUrl}/readyz`)).status).toBe(200);
    seed(s);
    await e.add('{"tags":["user:1"]}');
    await waitFor(() => !s.store.has('k:b'), 'the tag entry');
    await e.add('Accounts');
    await waitFor(() => !s.store.has('k:a'), 'the table entry');
    expect(s.store.has('k:c')).toBe(true);
    expect(await metric(s, 'sidecache_invalidations_total', { source: e.bus })).toBe(2);
  });

  it('starts after the entries already in the stream: old ones are not applied', async () => {
    const e = (env = await streamEnv());
    await e.add('{"all":true}');
    const s = (server = await startSidecache(`invalidation:\n  - ${e.entry()}\n`));
    seed(s);
    await e.add('{"tags":["user:1"]}');
    await waitFor(() => !s.store.has('k:b'), 'the entry added after the start');
    expect(s.store.has('k:a')).toBe(true);
    expect(await metric(s, 'sidecache_invalidations_total', { source: e.bus })).toBe(1);
  });

  it('after an outage, applies what was added meanwhile, in order, and does not flush', async () => {
    const { e, s } = await start();
    seed(s);
    await e.add('{"tags":["other"]}');
    await waitFor(() => !s.store.has('k:c'), 'the entry before the outage');
    const down = await outage(s, e);
    await e.add('{"tags":["user:1"]}');
    await e.add('accounts');
    expect(s.store.has('k:b')).toBe(true);
    s.store.set('k:kept', { body: Buffer.from('k'), ttlMs: 60_000, tags: ['kept'] });
    await down.back();
    await waitFor(() => !s.store.has('k:b') && !s.store.has('k:a'), 'the entries added while down');
    expect(s.store.has('k:kept')).toBe(true);
    expect(await gaps(s, e)).toBe(0);
    expect(await metric(s, 'sidecache_invalidations_total', { source: e.bus })).toBe(3);
    expect((await fetch(`${s.adminUrl}/readyz`)).status).toBe(200);
  });

  it('reads a backlog larger than one read batch, every entry once, without a flush', async () => {
    const { e, s } = await start();
    const down = await outage(s, e);
    const pipeline = e.redis.pipeline();
    for (let i = 0; i < 250; i++) {
      s.store.set(`k:${i}`, { body: Buffer.from('x'), ttlMs: 60_000, tags: [`user:${i}`] });
      pipeline.xadd(e.stream, '*', 'msg', JSON.stringify({ tags: [`user:${i}`] }));
    }
    await pipeline.exec();
    s.store.set('k:kept', { body: Buffer.from('k'), ttlMs: 60_000, tags: ['kept'] });
    await down.back();
    await waitFor(() => s.store.size === 1, 'the backlog to be applied');
    expect(s.store.has('k:kept')).toBe(true);
    expect(await metric(s, 'sidecache_invalidations_total', { source: e.bus })).toBe(250);
    expect(await gaps(s, e)).toBe(0);
  });

  it.each([
    ['XTRIM MAXLEN 0 after the entries', async (e: StreamEnv) => void (await e.redis.xtrim(e.stream, 'MAXLEN', 0))],
    [
      'XADD MAXLEN 1 (the next entries push the first out)',
      async (e: StreamEnv) => {
        for (let i = 0; i < 2; i++) await e.redis.xadd(e.stream, 'MAXLEN', 1, '*', 'msg', '{"tags":["user:2"]}');
      },
    ],
    ['the stream deleted', async (e: StreamEnv) => void (await e.redis.del(e.stream))],
    [
      'the stream deleted and added to again',
      async (e: StreamEnv) => {
        await e.redis.del(e.stream);
        await e.add('{"tags":["user:2"]}');
      },
    ],
  ])('a stream trimmed past the last applied entry while down is a gap: flush (%s)', async (_, trim) => {
    const { e, s } = await start();
    await e.add('{"tags":["none"]}');
    await waitFor(async () => (await metric(s, 'sidecache_invalidations_total', { source: e.bus })) === 1, 'the first entry');
    const down = await outage(s, e);
    seed(s);
    await e.add('{"tags":["user:1"]}');
    await trim(e);
    await down.back();
    await waitFor(() => s.store.size === 0, 'the gap flush');
    expect(await gaps(s, e)).toBe(1);
    // The bus reads on from the stream's end.
    s.store.set('k:after', { body: Buffer.from('y'), ttlMs: 60_000, tags: ['user:3'] });
    await e.add('{"tags":["user:3"]}');
    await waitFor(() => !s.store.has('k:after'), 'entries after the gap');
    expect(await gaps(s, e)).toBe(1);
  });

  it('a trim that leaves every entry after the last applied one is no gap', async () => {
    const { e, s } = await start();
    await e.add('{"tags":["none"]}');
    await waitFor(async () => (await metric(s, 'sidecache_invalidations_total', { source: e.bus })) === 1, 'the first entry');
    const down = await outage(s, e);
    seed(s);
    await e.add('{"tags":["user:1"]}');
    // Trims the applied entry only: the one added while down stays.
    await e.redis.xtrim(e.stream, 'MAXLEN', 1);
    await down.back();
    await waitFor(() => !s.store.has('k:b'), 'the entry added while down');
    expect(s.store.has('k:a')).toBe(true);
    expect(await gaps(s, e)).toBe(0);
  });

  it('refuses oversized entries, bad messages and entries without a msg field, counted; keeps reading', async () => {
    const { e, s } = await start('maxMessageBytes: 1KiB');
    await e.add(JSON.stringify({ tags: ['x'.repeat(2000)] }));
    await e.add('{"tag":["typo"]}');
    await e.redis.xadd(e.stream, '*', 'message', '{"tags":["user:1"]}');
    seed(s);
    await e.add('{"tags":["other"]}');
    await waitFor(() => !s.store.has('k:c'), 'the entry after the bad ones');
    expect(s.store.has('k:b')).toBe(true);
    expect(await metric(s, 'sidecache_invalidation_errors_total', { source: e.bus })).toBe(3);
    expect(await metric(s, 'sidecache_invalidations_total', { source: e.bus })).toBe(1);
  });

  it('a half-open connection is noticed by the blocking read; what was added meanwhile is applied without a flush', async () => {
    const { e, s } = await start('heartbeat: 100ms');
    seed(s);
    e.proxy.stall('toClient');
    await e.add('{"tags":["user:1"]}');
    await waitFor(async () => (await connected(s, e)) === 1 && e.proxy.accepted === 2, 'the missed read, and the reconnect');
    await waitFor(() => !s.store.has('k:b'), 'the entry added while the connection was stalled');
    expect(s.store.has('k:a')).toBe(true);
    expect(await gaps(s, e)).toBe(0);
  });

  it('stays up while the blocking reads come back, across many heartbeats', async () => {
    const { e, s } = await start('heartbeat: 50ms');
    for (let beat = 0; beat < 20; beat++) {
      expect(await connected(s, e)).toBe(1);
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(e.proxy.accepted).toBe(1);
  });

  it('stop closes the blocking connection at once, well within the grace, the server sees it go', async () => {
    const { e, s } = await start('heartbeat: 1h');
    expect(await e.connections()).toBe(1);
    let done = false;
    const stopping = s.stop(60_000).then(() => void (done = true));
    // The deadline only turns a hang into a failure: QUIT would wait behind XREAD BLOCK 1h.
    await waitFor(() => done, 'stop() to end', 10_000);
    await stopping;
    server = undefined;
    await waitFor(async () => (await e.connections()) === 0, 'the server to see the bus leave');
    expect(e.proxy.open).toBe(0);
  });

  it('stop ends within the grace when the connection is half-open', async () => {
    const { e, s } = await start('heartbeat: 1h');
    e.proxy.stall('toClient');
    let done = false;
    const stopping = s.stop(200).then(() => void (done = true));
    await waitFor(() => done, 'stop() to end once its grace is over', 10_000);
    await stopping;
    server = undefined;
    await waitFor(() => e.proxy.open === 0, 'the bus socket to be closed');
  });
});
