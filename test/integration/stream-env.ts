import type { Redis } from 'ioredis';
import { unique } from '../helpers/pg.js';
import { redisClient, REDIS_URL } from '../helpers/redis.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';

/**
 * A `redis-stream` bus behind a TCP proxy (test/helpers/tcp-proxy.ts) to the machine's real
 * Redis, under an ACL user of its own, so that a test can count the bus's connections at the
 * server and make outages at the proxy; `redis` is a direct connection for XADD, XTRIM and the like.
 */
export interface StreamEnv {
  readonly stream: string;
  /** The bus's name in metrics. */
  readonly bus: string;
  readonly proxy: TcpProxy;
  readonly redis: Redis;
  /** The `invalidation[]` entry through the proxy, with more flow-map keys in `extra`. */
  entry(extra?: string): string;
  /** `XADD <stream> * msg <payload>`; resolves to the entry's ID. */
  add(payload: string): Promise<string>;
  /** The bus user's connections open at the server now. */
  connections(): Promise<number>;
  close(): Promise<void>;
}

export async function streamEnv(): Promise<StreamEnv> {
  const stream = unique('stream');
  const user = unique('streamuser');
  const redis = redisClient();
  await redis.call('ACL', 'SETUSER', user, 'on', '>pw', '~*', '&*', '+@all');
  const server = new URL(REDIS_URL);
  const proxy = await startTcpProxy({ host: server.hostname, port: Number(server.port || 6379) });
  return {
    stream,
    bus: `redis-stream:${stream}`,
    proxy,
    redis,
    entry: (extra = '') => {
      const url = new URL(REDIS_URL);
      url.host = `${proxy.host}:${proxy.port}`;
      url.username = user;
      url.password = 'pw';
      return `{ type: redis-stream, url: "${url.href}", stream: ${stream}${extra ? `, ${extra}` : ''} }`;
    },
    add: async (payload) => (await redis.xadd(stream, '*', 'msg', payload))!,
    connections: async () => {
      const list = (await redis.call('CLIENT', 'LIST')) as string;
      return list.split('\n').filter((line) => line.includes(` user=${user} `)).length;
    },
    close: async () => {
      await proxy.close();
      await redis.call('CLIENT', 'KILL', 'USER', user).catch(() => undefined);
      await redis.call('ACL', 'DELUSER', user);
      await redis.del(stream);
      redis.disconnect();
    },
  };
}
