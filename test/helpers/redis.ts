import { Redis } from 'ioredis';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Whether Redis answers; tests skip loudly (with this reason) when it does not. */
export async function redisUnreachable(): Promise<string | undefined> {
  const client = new Redis(REDIS_URL, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, connectTimeout: 2000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.ping();
    client.disconnect();
    return undefined;
  } catch (err) {
    client.disconnect();
    const reason = `SKIPPED: Redis at ${REDIS_URL} is unreachable (${(err as Error).message})`;
    console.warn(reason);
    return reason;
  }
}

export function redisClient(): Redis {
  return new Redis(REDIS_URL);
}
