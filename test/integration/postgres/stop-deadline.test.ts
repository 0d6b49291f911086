/**
 * Issue 16 point 5: a stop ends by its shutdownGrace deadline, whatever hangs. Here the Redis bus's
 * connection goes half-open (a TCP proxy in the test stops forwarding, so its QUIT is never
 * answered) while a PostgreSQL session is idle: the stop still returns, and the session was told
 * 57P01. Nothing here measures time: without the deadline the stop would never return.
 */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { connect, PG, pgUnreachable } from '../../helpers/pg.js';
import { REDIS_URL, redisUnreachable } from '../../helpers/redis.js';
import { startSidecache } from '../../helpers/sidecache.js';

const unreachable = (await pgUnreachable()) ?? (await redisUnreachable());

/** A proxy to Redis that forwards both ways until `freeze()`, then drops everything silently (a half-open path). */
async function freezableProxy(target: URL): Promise<{ port: number; freeze(): void; close(): void }> {
  let frozen = false;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 6379), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
    }
    client.on('data', (c: Buffer) => void (frozen || upstream.write(c)));
    upstream.on('data', (c: Buffer) => void (frozen || client.write(c)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    freeze: () => void (frozen = true),
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

describe.skipIf(unreachable !== undefined)('stop deadline', () => {
  it('returns by the grace deadline while a bus is half-open, and idle sessions get 57P01', async () => {
    const proxy = await freezableProxy(new URL(REDIS_URL));
    try {
      const server = await startSidecache(
        `postgres:\n  - name: main\n    listen: "127.0.0.1:0"\n    upstream: "postgres://${PG.host}:${PG.port}?sslmode=disable"\n` +
          `invalidation:\n  - { type: redis, url: "redis://127.0.0.1:${proxy.port}", channel: stop_deadline_${process.pid} }\n`,
      );
      const client = await connect(server.postgresListeners[0]!.address.port);
      const failed = new Promise<Error & { code?: string }>((resolve) => client.on('error', resolve));
      await client.query('SELECT 1');
      proxy.freeze();
      expect(await server.stop(200)).toEqual({ forced: true });
      expect((await failed).code).toBe('57P01');
    } finally {
      proxy.close();
    }
  });
});
