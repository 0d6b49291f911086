/**
 * Issue 17, found by the two-replica soak (bench/lib/soak-replicas.mjs, SOAK_BUS=redis-stream): a
 * redis-stream bus resumes after an outage without a flush, trusting the stream to hold every
 * invalidation made meanwhile. But a replica's own invalidations made during the outage are not in
 * the stream: they wait in that replica's outbox until its own bus is back. When B's bus comes back
 * before A's, B serves from its cache what A invalidated (and answered its client for) during the
 * outage, until A's outbox is published. Each replica reaches Redis through a proxy of its own, so
 * that B's bus can be back while A's is still down.
 *
 * Fixed: a durable bus that replicas publish on (`publish: true`) treats a resume after an outage
 * as a gap (flush), like the other buses; it resumes without a flush only with `publish: false`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SidecacheServer } from '../../src/server.js';
import { type Origin, startOrigin } from '../helpers/origin.js';
import { REDIS_URL, redisUnreachable } from '../helpers/redis.js';
import { httpListenerYaml, metric, startSidecache } from '../helpers/sidecache.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { waitFor } from '../helpers/wait.js';
import { type StreamEnv, streamEnv } from './stream-env.js';

const redisDown = await redisUnreachable();

describe.skipIf(redisDown !== undefined)('redis-stream bus: what A invalidated during an outage, B must not serve once its own bus is back', () => {
  let env: StreamEnv;
  let proxyB: TcpProxy;
  let origin: Origin;
  let a: SidecacheServer;
  let b: SidecacheServer;

  beforeAll(async () => {
    env = await streamEnv();
    const redis = new URL(REDIS_URL);
    proxyB = await startTcpProxy({ host: redis.hostname, port: Number(redis.port || 6379) });
    origin = await startOrigin((_req, res, n) => {
      res.writeHead(200, { 'cache-control': 'max-age=600', 'surrogate-key': 'shared' });
      res.end(`call ${n}`);
    });
    const entryA = env.entry('heartbeat: 250ms');
    const entryB = entryA.replace(`:${env.proxy.port}`, `:${proxyB.port}`);
    a = await startSidecache(`${httpListenerYaml(origin.url)}invalidation:\n  - ${entryA}\n`);
    b = await startSidecache(`${httpListenerYaml(origin.url)}invalidation:\n  - ${entryB}\n`);
  });
  afterAll(async () => {
    await a?.stop(100);
    await b?.stop(100);
    await proxyB?.close();
    await env?.close();
    await origin?.close();
  });

  const connected = (s: SidecacheServer) => metric(s, 'sidecache_bus_connected', { bus: env.bus });
  const getB = async () => {
    const res = await fetch(`http://127.0.0.1:${b.httpListeners[0]!.address.port}/items`);
    return { status: res.headers.get('cache-status') ?? '', body: await res.text() };
  };

  it('B, back before A, does not answer from entries stored before the outage', async () => {
    const stored = await getB();
    expect((await getB()).status).toMatch(/hit/);
    for (const proxy of [env.proxy, proxyB]) {
      proxy.refuse(true);
      proxy.cut();
    }
    await waitFor(async () => (await connected(a)) === 0 && (await connected(b)) === 0, 'both buses to notice the outage');
    // A's client is answered; the message waits in A's outbox (its publish failed).
    const res = await fetch(`${a.adminUrl}/invalidate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"tags":["shared"]}' });
    expect(res.status).toBe(200);
    expect(await metric(a, 'sidecache_bus_publishes_total', { bus: env.bus, result: 'failed' })).toBeGreaterThan(0);
    proxyB.refuse(false);
    await waitFor(async () => (await connected(b)) === 1, "B's bus to be back", 10_000);
    expect(await connected(a)).toBe(0);
    const after = await getB();
    expect(after.status).not.toMatch(/hit/);
    expect(after.body).not.toBe(stored.body);
  });
});
