import type { Redis } from 'ioredis';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SidecacheServer } from '../../src/server.js';
import { connect, PG, pgUnreachable, unique } from '../helpers/pg.js';
import { redisClient, redisUnreachable, REDIS_URL } from '../helpers/redis.js';
import { sample, startSidecache } from '../helpers/sidecache.js';
import { waitFor } from '../helpers/wait.js';

const pgDown = await pgUnreachable();
const redisDown = await redisUnreachable();

/** What the contract suite needs from one bus implementation, all against the real server. */
interface BusEnv {
  /** The `invalidation[]` entry. */
  yaml: string;
  bus: string;
  publish(payload: string): Promise<void>;
  /** Hears every payload on the channel (as another replica would) until the returned function is called. */
  listen(onPayload: (payload: string) => void): Promise<() => Promise<void>>;
  /** Drops the subscriber's connection and keeps it from coming back. */
  cut(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

function busContract(kind: string, skip: string | undefined, makeEnv: () => Promise<BusEnv>): void {
  describe.skipIf(skip !== undefined)(`invalidation bus contract: ${kind}`, () => {
    let env: BusEnv;
    let server: SidecacheServer;
    const metrics = async () => (await fetch(`${server.adminUrl}/metrics`)).text();
    const seed = () => {
      server.store.set('k:a', { body: Buffer.from('a'), ttlMs: 60_000, tags: ['table:accounts'] });
      server.store.set('k:b', { body: Buffer.from('b'), ttlMs: 60_000, tags: ['user:1'] });
      server.store.set('k:c', { body: Buffer.from('c'), ttlMs: 60_000, tags: ['other'] });
    };

    beforeAll(async () => {
      env = await makeEnv();
      server = await startSidecache(`invalidation:\n  - ${env.yaml}\n`);
    });
    afterAll(async () => {
      await server?.stop(100);
      await env?.close();
    });

    it('is subscribed once started: connected gauge 1, /readyz 200', async () => {
      expect(sample(await metrics(), 'sidecache_bus_connected', { bus: env.bus })).toBe(1);
      expect((await fetch(`${server.adminUrl}/readyz`)).status).toBe(200);
    });

    it('applies JSON and table-list messages, counted by bus', async () => {
      seed();
      await env.publish('{"tags":["user:1"]}');
      await waitFor(() => !server.store.has('k:b'), 'the tag message');
      await env.publish('Accounts');
      await waitFor(() => !server.store.has('k:a'), 'the table message');
      expect(server.store.has('k:c')).toBe(true);
      expect(sample(await metrics(), 'sidecache_invalidations_total', { source: env.bus })).toBe(2);
    });

    it('counts and ignores a malformed message, and keeps working', async () => {
      seed();
      await env.publish('{"tag": ["typo"]}');
      await env.publish('{"tags":["other"]}');
      await waitFor(() => !server.store.has('k:c'), 'the message after the bad one');
      expect(sample(await metrics(), 'sidecache_invalidation_errors_total', { source: env.bus })).toBe(1);
    });

    it('publishes its own invalidations with its origin, skips their echo, and never publishes a message it received (issue 17)', async () => {
      const heard: string[] = [];
      const stop = await env.listen((payload) => heard.push(payload));
      try {
        seed();
        const { removed, published } = server.fanOut.invalidate({ tags: ['user:1'] }, 'test');
        expect(removed).toBe(1);
        await published;
        await waitFor(() => heard.length === 1, 'the published message');
        expect(JSON.parse(heard[0]!)).toEqual({ origin: server.instanceId, tags: ['user:1'] });
        expect(sample(await metrics(), 'sidecache_bus_publishes_total', { bus: env.bus, result: 'sent' })).toBe(1);
        await waitFor(async () => sample(await metrics(), 'sidecache_bus_echoes_total', { bus: env.bus }) === 1, 'the echo');
        const before = sample(await metrics(), 'sidecache_invalidations_total', { source: env.bus });
        // Another replica's message (another origin): applied, and not published again.
        await env.publish(JSON.stringify({ tags: ['other'], origin: 'another-replica' }));
        await waitFor(async () => sample(await metrics(), 'sidecache_invalidations_total', { source: env.bus }) === before + 1, 'the message');
        expect(server.store.has('k:c')).toBe(false);
        expect(sample(await metrics(), 'sidecache_bus_publishes_total', { bus: env.bus, result: 'sent' })).toBe(1);
        expect(sample(await metrics(), 'sidecache_bus_echoes_total', { bus: env.bus })).toBe(1);
        // Ordered on the channel: one more message of our own proves nothing else was sent in between.
        await server.fanOut.invalidate({ keys: ['k:a'] }, 'test').published;
        await waitFor(() => heard.length === 3, 'the second message of our own');
        expect(heard.slice(1).map((p) => JSON.parse(p) as unknown)).toEqual([
          { tags: ['other'], origin: 'another-replica' },
          { origin: server.instanceId, keys: ['k:a'] },
        ]);
      } finally {
        await stop();
      }
    });

    it('splits a large local invalidation into messages the bus carries and receivers accept (issue 17)', async () => {
      const heard: string[] = [];
      const stop = await env.listen((payload) => heard.push(payload));
      try {
        const tags = Array.from({ length: 2000 }, (_, i) => `table:split_${i}`);
        await server.fanOut.invalidate({ tags }, 'test').published;
        const got = new Set<string>();
        await waitFor(() => {
          for (const p of heard.splice(0)) {
            // NOTIFY payloads are shorter than 8000 bytes; every message within maxMessageBytes (1 MiB).
            expect(Buffer.byteLength(p)).toBeLessThan(env.bus.startsWith('postgres') ? 8000 : 1024 ** 2);
            for (const t of (JSON.parse(p) as { tags: string[] }).tags) got.add(t);
          }
          return got.size === tags.length;
        }, 'every name on the bus');
      } finally {
        await stop();
      }
    });

    it('degrades while a bus is down (200 on /readyz, nothing served), keeps what it could not publish, and flushes on reconnect (issue 17)', async () => {
      const heard: string[] = [];
      const stop = await env.listen((payload) => heard.push(payload));
      seed();
      await env.cut();
      type Ready = { ready: boolean; degraded?: string[]; serving?: string };
      const ready = async (): Promise<[number, Ready]> => {
        const res = await fetch(`${server.adminUrl}/readyz`);
        return [res.status, (await res.json()) as Ready];
      };
      await waitFor(async () => (await ready())[1].degraded !== undefined, '/readyz to report the outage');
      const [status, body] = await ready();
      expect(status).toBe(200);
      expect(body.ready).toBe(true);
      expect(body.degraded!.join(' ')).toContain(`bus ${env.bus}`);
      expect(body.serving).toBe('bypass (bus-down)');
      expect(sample(await metrics(), 'sidecache_bus_connected', { bus: env.bus })).toBe(0);
      expect(sample(await metrics(), 'sidecache_serving_degraded', { mode: 'bypass' })).toBe(1);
      expect(server.store.get('k:b')).toBeUndefined();
      // A local invalidation while the bus is down: applied here, kept in the outbox, sent once the bus is back.
      await server.fanOut.invalidate({ tags: ['user:7'] }, 'test').published;
      expect(sample(await metrics(), 'sidecache_bus_publishes_total', { bus: env.bus, result: 'failed' })).toBe(1);
      expect(sample(await metrics(), 'sidecache_bus_outbox_names', { bus: env.bus })).toBe(1);
      await env.publish('{"tags":["user:1"]}');
      expect(server.store.has('k:b')).toBe(true);
      await env.restore();
      await waitFor(() => server.store.size === 0, 'the gap flush', 10_000);
      await waitFor(async () => (await ready())[1].degraded === undefined, '/readyz to recover', 10_000);
      expect(await ready()).toEqual([200, { ready: true }]);
      expect(sample(await metrics(), 'sidecache_serving_degraded', { mode: 'bypass' })).toBe(0);
      expect(sample(await metrics(), 'sidecache_bus_gaps_total', { bus: env.bus })).toBe(1);
      await waitFor(() => heard.some((p) => p.includes('user:7')), 'the outbox published', 10_000);
      expect(JSON.parse(heard.find((p) => p.includes('user:7'))!)).toEqual({ origin: server.instanceId, tags: ['user:7'] });
      expect(sample(await metrics(), 'sidecache_bus_outbox_names', { bus: env.bus })).toBe(0);
      await stop();
      seed();
      await env.publish('{"tags":["user:1"]}');
      await waitFor(() => !server.store.has('k:b'), 'messages after the reconnect');
    });
  });
}

busContract('postgres LISTEN', pgDown, async () => {
  const channel = unique('chan');
  const role = unique('busrole');
  const admin: pg.Client = await connect(undefined);
  await admin.query(`CREATE ROLE ${role} LOGIN`);
  const terminate = () => admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1`, [role]);
  return {
    yaml: `{ type: postgres, url: "postgres://${role}@${PG.host}:${PG.port}/${PG.database}", channel: ${channel} }`,
    bus: `postgres:${channel}`,
    publish: async (payload) => void (await admin.query('SELECT pg_notify($1, $2)', [channel, payload])),
    listen: async (onPayload) => {
      const listener = await connect(undefined);
      listener.on('notification', (n) => {
        if (n.channel === channel) onPayload(n.payload ?? '');
      });
      await listener.query(`LISTEN ${channel}`);
      return () => listener.end();
    },
    cut: async () => {
      await admin.query(`ALTER ROLE ${role} NOLOGIN`);
      await terminate();
    },
    restore: async () => void (await admin.query(`ALTER ROLE ${role} LOGIN`)),
    close: async () => {
      await terminate();
      await admin.query(`DROP ROLE IF EXISTS ${role}`);
      await admin.end();
    },
  };
});

busContract('redis SUBSCRIBE', redisDown, async () => {
  const channel = unique('chan');
  const user = unique('bususer');
  const redis: Redis = redisClient();
  await redis.call('ACL', 'SETUSER', user, 'on', '>pw', '&*', '+@all');
  const url = new URL(REDIS_URL);
  url.username = user;
  url.password = 'pw';
  return {
    yaml: `{ type: redis, url: "${url.href}", channel: ${channel} }`,
    bus: `redis:${channel}`,
    publish: async (payload) => void (await redis.publish(channel, payload)),
    listen: async (onPayload) => {
      const subscriber = redisClient();
      subscriber.on('message', (from: string, payload: string) => {
        if (from === channel) onPayload(payload);
      });
      await subscriber.subscribe(channel);
      return async () => void subscriber.disconnect();
    },
    cut: async () => {
      await redis.call('ACL', 'SETUSER', user, 'off');
      await redis.call('CLIENT', 'KILL', 'USER', user);
    },
    restore: async () => void (await redis.call('ACL', 'SETUSER', user, 'on')),
    close: async () => {
      await redis.call('ACL', 'DELUSER', user);
      redis.disconnect();
    },
  };
});

describe.skipIf(redisDown !== undefined)('onGap: keep', () => {
  it('keeps entries when a bus comes back, and still counts the gap', async () => {
    const channel = unique('chan');
    const user = unique('keeper');
    const redis = redisClient();
    await redis.call('ACL', 'SETUSER', user, 'on', '>pw', '&*', '+@all');
    const url = new URL(REDIS_URL);
    url.username = user;
    url.password = 'pw';
    const server = await startSidecache(`invalidation:\n  - { type: redis, url: "${url.href}", channel: ${channel}, onGap: keep }\n`);
    try {
      server.store.set('kept', { body: Buffer.from('x'), ttlMs: 60_000, tags: ['t'] });
      await redis.call('CLIENT', 'KILL', 'USER', user);
      const gaps = async () => sample(await (await fetch(`${server.adminUrl}/metrics`)).text(), 'sidecache_bus_gaps_total', { bus: `redis:${channel}` });
      await waitFor(async () => (await gaps()) === 1, 'the reconnect');
      expect(server.store.has('kept')).toBe(true);
    } finally {
      await server.stop(100);
      await redis.call('ACL', 'DELUSER', user);
      redis.disconnect();
    }
  });
});
