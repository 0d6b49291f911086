import { describe, expect, it } from 'vitest';
import { type Instance, spawnInstance } from '../helpers/instance.js';
import { startOrigin } from '../helpers/origin.js';
import { connect, PG, pgUnreachable, unique } from '../helpers/pg.js';
import { redisClient, redisUnreachable, REDIS_URL } from '../helpers/redis.js';
import { sample } from '../helpers/sidecache.js';
import { waitFor } from '../helpers/wait.js';

const skip = (await pgUnreachable()) ?? (await redisUnreachable());

describe.skipIf(skip !== undefined)('many instances', () => {
  it('two sidecache processes on the same Redis channel and NOTIFY channel both apply every message', async () => {
    const origin = await startOrigin((_req, res, n) => {
      res.writeHead(200, { 'cache-control': 'max-age=60', 'surrogate-key': 'shared table:items' });
      res.end(`call ${n}`);
    });
    const channel = unique('chan');
    const config = `admin: { listen: "127.0.0.1:0" }
http:
  - { name: api, listen: "127.0.0.1:0", upstream: "${origin.url}" }
invalidation:
  - { type: redis, url: "${REDIS_URL}", channel: ${channel} }
  - { type: postgres, url: "postgres://${PG.user}@${PG.host}:${PG.port}/${PG.database}", channel: ${channel} }
`;
    const instances = await Promise.all([spawnInstance(config), spawnInstance(config)]);
    const redis = redisClient();
    const pg = await connect(undefined);
    const status = async (i: Instance) => (await fetch(`${i.http!}/x`)).headers.get('cache-status') ?? '';
    const applied = async (i: Instance, source: string) =>
      sample(await (await fetch(`${i.admin}/metrics`)).text(), 'sidecache_invalidated_entries_total', { source });
    try {
      for (const i of instances) {
        await status(i);
        expect(await status(i)).toMatch(/hit/);
      }
      await redis.publish(channel, '{"tags":["shared"]}');
      for (const i of instances) {
        await waitFor(async () => (await applied(i, `redis:${channel}`)) === 1, 'the Redis message at each instance');
        expect(await applied(i, `redis:${channel}`)).toBe(1);
        expect(await status(i)).toMatch(/uri-miss/);
      }
      await pg.query('SELECT pg_notify($1, $2)', [channel, 'items']);
      for (const i of instances) {
        await waitFor(async () => (await applied(i, `postgres:${channel}`)) === 1, 'the NOTIFY at each instance');
        expect(await applied(i, `postgres:${channel}`)).toBe(1);
        expect(await status(i)).toMatch(/uri-miss/);
      }
    } finally {
      redis.disconnect();
      await pg.end();
      for (const i of instances) await i.stop();
      await origin.close();
    }
  });
});
