import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { connect, PG, pgUnreachable, unique } from '../helpers/pg.js';
import { redisClient, redisUnreachable, REDIS_URL } from '../helpers/redis.js';
import { sample, startSidecache } from '../helpers/sidecache.js';
import { waitFor } from '../helpers/wait.js';

const run = promisify(execFile);
const skip = (await pgUnreachable()) ?? (await redisUnreachable());

describe.skipIf(skip !== undefined)('examples/writers/update-and-publish.mjs', () => {
  it('updates a row and its messages invalidate through every bus: NOTIFY, PUBLISH and XADD', async () => {
    const table = unique('people');
    const pgChannel = unique('pgchan');
    const redisChannel = unique('rchan');
    const stream = unique('rstream');
    const direct = await connect(undefined);
    await direct.query(`CREATE TABLE ${table} (id int PRIMARY KEY, name text); INSERT INTO ${table} VALUES (42, 'old')`);
    const server = await startSidecache(
      `postgres:\n  - { name: main, listen: "127.0.0.1:0", upstream: "postgres://${PG.host}:${PG.port}?sslmode=disable" }\n` +
        `invalidation:\n  - { type: postgres, url: "postgres://${PG.user}@${PG.host}:${PG.port}/${PG.database}", channel: ${pgChannel} }\n` +
        `  - { type: redis, url: "${REDIS_URL}", channel: ${redisChannel} }\n` +
        `  - { type: redis-stream, url: "${REDIS_URL}", stream: ${stream} }\n`,
    );
    const via = await connect(server.postgresListeners[0]!.address.port);
    try {
      const read = async () => (await via.query(`SELECT name FROM ${table} WHERE id = 42`)).rows[0].name;
      expect(await read()).toBe('old');
      expect(await read()).toBe('old');
      const env = {
        ...process.env,
        PGHOST: PG.host,
        PGPORT: String(PG.port),
        PGUSER: PG.user,
        PGDATABASE: PG.database,
        REDIS_URL,
        SIDECACHE_CHANNEL: pgChannel,
        SIDECACHE_STREAM: stream,
      };
      const { stdout } = await run(process.execPath, ['examples/writers/update-and-publish.mjs', table, '42', 'new'], { env });
      expect(stdout).toContain('published');
      await waitFor(async () => (await read()) === 'new', 'the NOTIFY to invalidate the row');
      expect(await read()).toBe('new');
      const metrics = await (await fetch(`${server.adminUrl}/metrics`)).text();
      expect(metrics).toContain(`sidecache_invalidations_total{source="postgres:${pgChannel}"} 1`);
      // The same message XADDed to the stream reaches the redis-stream bus.
      const fromStream = async () =>
        sample(await (await fetch(`${server.adminUrl}/metrics`)).text(), 'sidecache_invalidations_total', { source: `redis-stream:${stream}` });
      await waitFor(async () => (await fromStream()) === 1, 'the stream entry to be applied');
      // The same message on Redis reaches an instance subscribed there.
      await run(process.execPath, ['examples/writers/update-and-publish.mjs', table, '42', 'newer'], { env: { ...env, SIDECACHE_CHANNEL: redisChannel } });
      const fromRedis = async () =>
        sample(await (await fetch(`${server.adminUrl}/metrics`)).text(), 'sidecache_invalidations_total', { source: `redis:${redisChannel}` });
      await waitFor(async () => (await fromRedis()) === 1, 'the Redis message to be applied');
      expect(await read()).toBe('newer');
    } finally {
      await via.end();
      await server.stop(100);
      const redis = redisClient();
      await redis.del(stream);
      redis.disconnect();
      await direct.query(`DROP TABLE ${table}`);
      await direct.end();
    }
  });
});
