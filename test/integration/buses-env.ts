import type pg from 'pg';
import type { Redis } from 'ioredis';
import { connect, PG, unique } from '../helpers/pg.js';
import { redisClient, REDIS_URL } from '../helpers/redis.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';

/**
 * One bus of each kind behind a TCP proxy (test/helpers/tcp-proxy.ts) to the machine's real
 * server, under an identity of its own (a role, an ACL user), so that the test can count the
 * bus's connections at the server and make outages at the proxy without touching the server.
 */
export interface ProxiedBus {
  kind: 'postgres' | 'redis';
  /** The bus's name in metrics. */
  bus: string;
  proxy: TcpProxy;
  /** The `invalidation[]` entry, through the proxy (`direct`: to the server), with more flow-map keys in `extra`. */
  entry(extra?: string, direct?: boolean): string;
  publish(payload: string): Promise<void>;
  /** The bus identity's connections open at the server now. */
  connections(): Promise<number>;
  close(): Promise<void>;
}

export async function proxiedPostgresBus(): Promise<ProxiedBus> {
  const channel = unique('chan');
  const role = unique('busrole');
  const admin: pg.Client = await connect(undefined);
  await admin.query(`CREATE ROLE ${role} LOGIN`);
  const proxy = await startTcpProxy({ host: PG.host, port: PG.port });
  return {
    kind: 'postgres',
    bus: `postgres:${channel}`,
    proxy,
    entry: (extra = '', direct = false) => {
      const at = direct ? `${PG.host}:${PG.port}` : `${proxy.host}:${proxy.port}`;
      return `{ type: postgres, url: "postgres://${role}@${at}/${PG.database}", channel: ${channel}${extra ? `, ${extra}` : ''} }`;
    },
    publish: async (payload) => void (await admin.query('SELECT pg_notify($1, $2)', [channel, payload])),
    connections: async () => Number((await admin.query('SELECT count(*) AS n FROM pg_stat_activity WHERE usename = $1', [role])).rows[0].n),
    close: async () => {
      await proxy.close();
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [role]);
      await admin.query(`DROP ROLE IF EXISTS ${role}`);
      await admin.end();
    },
  };
}

export async function proxiedRedisBus(): Promise<ProxiedBus> {
  const channel = unique('chan');
  const user = unique('bususer');
  const redis: Redis = redisClient();
  await redis.call('ACL', 'SETUSER', user, 'on', '>pw', '&*', '+@all');
  const server = new URL(REDIS_URL);
  const proxy = await startTcpProxy({ host: server.hostname, port: Number(server.port || 6379) });
  return {
    kind: 'redis',
    bus: `redis:${channel}`,
    proxy,
    entry: (extra = '', direct = false) => {
      const url = new URL(REDIS_URL);
      if (!direct) url.host = `${proxy.host}:${proxy.port}`;
      url.username = user;
      url.password = 'pw';
      return `{ type: redis, url: "${url.href}", channel: ${channel}${extra ? `, ${extra}` : ''} }`;
    },
    publish: async (payload) => void (await redis.publish(channel, payload)),
    connections: async () => {
      const list = (await redis.call('CLIENT', 'LIST')) as string;
      return list.split('\n').filter((line) => line.includes(` user=${user} `)).length;
    },
    close: async () => {
      await proxy.close();
      await redis.call('CLIENT', 'KILL', 'USER', user).catch(() => undefined);
      await redis.call('ACL', 'DELUSER', user);
      redis.disconnect();
    },
  };
}
