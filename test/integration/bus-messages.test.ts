import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { Logger } from '../../src/log.js';
import { SidecacheServer } from '../../src/server.js';
import { redisUnreachable } from '../helpers/redis.js';
import { metric } from '../helpers/sidecache.js';
import { waitFor } from '../helpers/wait.js';
import { type ProxiedBus, proxiedRedisBus } from './buses-env.js';

const redisDown = await redisUnreachable();

/** A sidecache on `entry` whose warnings land in `lines`. */
async function startWithLog(entry: string, lines: string[]): Promise<SidecacheServer> {
  const config = parseConfig(`admin: { listen: "127.0.0.1:0" }\ninvalidation:\n  - ${entry}\n`, 'test.yaml', process.env);
  const server = new SidecacheServer(config, { log: new Logger({ level: 'warn', sink: (line) => lines.push(line) }) });
  await server.start();
  return server;
}

const nested = (depth: number): string => '['.repeat(depth) + ']'.repeat(depth);
const tagsMessage = (count: number, name: (i: number) => string): string => JSON.stringify({ tags: Array.from({ length: count }, (_, i) => name(i)) });

/**
 * Issue 16 points 2 and 6 over a real Redis: no message, of any shape or size, throws out of a
 * bus handler; size and nesting are limited before parsing; a large message is applied in slices;
 * warnings about bad messages are rate-limited by reason, not by payload.
 */
describe.skipIf(redisDown !== undefined)('bus messages of any shape and size', () => {
  let env: ProxiedBus;
  let server: SidecacheServer;
  const lines: string[] = [];
  const errors = () => metric(server, 'sidecache_invalidation_errors_total', { source: env.bus });
  const badWarnings = () =>
    lines.map((l) => JSON.parse(l) as { code?: string; msg: string; reason?: string }).filter((r) => r.code === 'SC_WARN_BAD_INVALIDATION');

  beforeAll(async () => {
    env = await proxiedRedisBus();
    server = await startWithLog(env.entry('', true), lines);
  });
  afterAll(async () => {
    await server?.stop(100);
    await env?.close();
  });

  /** Publishes `payload`, then a good message, and waits for the good one: the bad one has been handled by then. */
  async function publishThenProbe(payload: string): Promise<void> {
    server.store.set('probe', { body: Buffer.from('p'), ttlMs: 60_000, tags: ['probe'] });
    await env.publish(payload);
    await env.publish('{"tags":["probe"]}');
    await waitFor(() => !server.store.has('probe'), 'the message after the bad one');
  }

  it('refuses messages nested 10,000 deep before parsing them, and keeps working', async () => {
    const before = await errors();
    await publishThenProbe(nested(10_000));
    await publishThenProbe(`{"tags":${nested(10_000)}}`);
    await publishThenProbe(`{"tags":[["user:1"]]}`);
    expect((await errors()) - before).toBe(3);
    expect(badWarnings().some((w) => w.reason === 'nested too deep')).toBe(true);
  });

  it('refuses a 10 MB message (a million tags) over maxMessageBytes, counted, without applying any of it', async () => {
    server.store.set('k:tagged', { body: Buffer.from('x'), ttlMs: 60_000, tags: ['t:0'] });
    const before = await errors();
    const payload = tagsMessage(1_000_000, (i) => `t:${i}`);
    expect(payload.length).toBeGreaterThan(10_000_000);
    await publishThenProbe(payload);
    expect((await errors()) - before).toBe(1);
    expect(server.store.has('k:tagged')).toBe(true);
    const warning = badWarnings().find((w) => w.reason === 'too large');
    expect(warning?.msg).toMatch(/more than maxMessageBytes \(1048576\)/);
  });

  it('logs bad messages at most once per reason, however many distinct payloads, each line short', async () => {
    const before = await errors();
    const warned = badWarnings().length;
    for (let i = 0; i < 300; i++) {
      await env.publish(`{"tag":["x${i}"]}`);
      await env.publish(`{"tags":"${'y'.repeat(i * 100)}"}`);
    }
    await publishThenProbe(`a,,${'z'.repeat(500_000)}`);
    expect((await errors()) - before).toBe(601);
    const fresh = badWarnings().slice(warned);
    expect(fresh.map((w) => w.reason).sort()).toEqual(['not a list of table names', 'tags not a list of strings', 'unknown field']);
    for (const line of lines) expect(line.length).toBeLessThan(1_000);
  });
});

describe.skipIf(redisDown !== undefined)('a large message with maxMessageBytes raised', () => {
  let env: ProxiedBus;
  let server: SidecacheServer;

  beforeAll(async () => {
    env = await proxiedRedisBus();
    server = await startWithLog(env.entry('maxMessageBytes: 16MiB', true), []);
  });
  afterAll(async () => {
    await server?.stop(100);
    await env?.close();
  });

  it('applies a million tags in slices, the event loop turning in between, and counts the message once', async () => {
    server.store.set('k:first', { body: Buffer.from('a'), ttlMs: 60_000, tags: ['t:0'] });
    server.store.set('k:last', { body: Buffer.from('b'), ttlMs: 60_000, tags: ['t:999999'] });
    const applied = await metric(server, 'sidecache_invalidations_total', { source: env.bus });
    await env.publish(tagsMessage(1_000_000, (i) => `t:${i}`));
    // Checked on every turn of the event loop: a message applied in one go is never seen half done.
    let halfDone = false;
    const deadline = Date.now() + 15_000;
    while (server.store.has('k:last')) {
      if (Date.now() > deadline) throw new Error('timed out waiting for the large message');
      if (!server.store.has('k:first')) halfDone = true;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    expect(halfDone).toBe(true);
    await waitFor(async () => (await metric(server, 'sidecache_invalidations_total', { source: env.bus })) === applied + 1, 'the message to be counted');
    expect(await metric(server, 'sidecache_invalidations_total', { source: env.bus })).toBe(applied + 1);
  });
});
