import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { RedisBus } from '../../src/invalidation/buses/redis.js';
import { unique } from '../helpers/pg.js';
import { redisClient, redisUnreachable, REDIS_URL } from '../helpers/redis.js';
import { metric, startSidecache } from '../helpers/sidecache.js';
import { waitFor } from '../helpers/wait.js';

const cli = new URL('../../dist/cli.js', import.meta.url).pathname;
const redisDown = await redisUnreachable();

function run(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args]);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** Whether Redis pub/sub can publish on this branch (issue 17's fan-out brings RedisBus.publish). */
const pubSubCannotPublish =
  (RedisBus.prototype as { publish?: unknown }).publish === undefined ? 'SKIPPED: RedisBus has no publish() yet (issue 17 fan-out)' : undefined;
if (pubSubCannotPublish !== undefined) console.warn(pubSubCannotPublish);

/** Issue 17 point 5: `sidecache invalidate --bus` publishes straight onto a bus, without an admin. */
describe('sidecache invalidate --bus (built CLI)', () => {
  it('refuses option mixes and types the URL cannot serve, exit 2', async () => {
    const cases = [
      ['--type', 'redis-stream', '--tag', 'x'],
      ['--channel', 'c', '--tag', 'x'],
      ['--bus', REDIS_URL, '--admin', 'http://127.0.0.1:9090', '--tag', 'x'],
      ['--bus', REDIS_URL, '--type', 'kafka', '--tag', 'x'],
      ['--bus', 'postgres://127.0.0.1/db', '--type', 'redis-stream', '--tag', 'x'],
      ['--bus', 'http://127.0.0.1', '--tag', 'x'],
      ['--bus', REDIS_URL, '--type', 'redis-stream', '--max-len', '-1', '--tag', 'x'],
      ['--bus', REDIS_URL],
    ];
    const results = await Promise.all(cases.map((args) => run('invalidate', ...args)));
    results.forEach((result, i) => {
      expect(result.status, cases[i]!.join(' ')).toBe(2);
      expect(result.stderr).toMatch(/^sidecache: /);
    });
  });

  it('says why when the bus cannot be reached, exit 1, without quoting the URL password', async () => {
    const result = await run('invalidate', '--bus', 'redis://u:secret@127.0.0.1:1', '--type', 'redis-stream', '--tag', 'x');
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('cannot publish on the bus: connect ECONNREFUSED');
    expect(result.stderr).not.toContain('secret');
  });

  it.skipIf(redisDown !== undefined)('XADDs to a stream (trimmed to --max-len) that a redis-stream bus applies', async () => {
    const stream = unique('clistream');
    const server = await startSidecache(`invalidation:\n  - { type: redis-stream, url: "${REDIS_URL}", stream: ${stream} }\n`);
    const redis = redisClient();
    try {
      server.store.set('k:b', { body: Buffer.from('b'), ttlMs: 60_000, tags: ['user:1'] });
      server.store.set('k:a', { body: Buffer.from('a'), ttlMs: 60_000, tags: ['table:accounts'] });
      const result = await run('invalidate', '--bus', REDIS_URL, '--type', 'redis-stream', '--channel', stream, '--tag', 'user:1', '--table', 'Accounts');
      expect(result).toMatchObject({ status: 0, stdout: `published on redis-stream:${stream}\n` });
      await waitFor(() => !server.store.has('k:b') && !server.store.has('k:a'), 'the entry to be applied');
      expect(await metric(server, 'sidecache_invalidations_total', { source: `redis-stream:${stream}` })).toBe(1);
      const entries = await redis.xrange(stream, '-', '+');
      expect(entries[0]?.[1]).toEqual(['msg', '{"tags":["user:1"],"tables":["Accounts"]}']);
      for (let i = 0; i < 3; i++)
        expect((await run('invalidate', '--bus', REDIS_URL, '--type', 'redis-stream', '--channel', stream, '--max-len', '0', '--all')).status).toBe(0);
      // MAXLEN ~ 0 trims whole nodes only; what matters is that the XADD asked for trimming.
      expect(await redis.xlen(stream)).toBeLessThanOrEqual(4);
    } finally {
      await server.stop(100);
      await redis.del(stream);
      redis.disconnect();
    }
  });

  it.skipIf(redisDown !== undefined || pubSubCannotPublish !== undefined)(
    'PUBLISHes on a channel that a redis bus applies (the type from the URL)',
    async () => {
      const channel = unique('clichan');
      const server = await startSidecache(`invalidation:\n  - { type: redis, url: "${REDIS_URL}", channel: ${channel} }\n`);
      try {
        server.store.set('k:b', { body: Buffer.from('b'), ttlMs: 60_000, tags: ['user:1'] });
        const result = await run('invalidate', '--bus', REDIS_URL, '--channel', channel, '--tag', 'user:1');
        expect(result).toMatchObject({ status: 0, stdout: `published on redis:${channel}\n` });
        await waitFor(() => !server.store.has('k:b'), 'the message to be applied');
      } finally {
        await server.stop(100);
      }
    },
  );
});
