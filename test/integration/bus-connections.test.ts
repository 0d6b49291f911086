import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SidecacheServer } from '../../src/server.js';
import { pgUnreachable } from '../helpers/pg.js';
import { redisUnreachable } from '../helpers/redis.js';
import { metric, startSidecache } from '../helpers/sidecache.js';
import { waitFor } from '../helpers/wait.js';
import { type ProxiedBus, proxiedPostgresBus, proxiedRedisBus } from './buses-env.js';

const skips = { postgres: await pgUnreachable(), redis: await redisUnreachable() };

/**
 * Issue 16 point 1: outages must not multiply a bus's connections. Each outage cuts the bus's
 * connection at the proxy and refuses several reconnects (each a failed attempt that once both
 * rejected and reported a loss, doubling the retry chains), then lets one through.
 */
for (const [kind, make] of [
  ['postgres', proxiedPostgresBus],
  ['redis', proxiedRedisBus],
] as const) {
  describe.skipIf(skips[kind] !== undefined)(`${kind} bus: one connection, whatever the outages`, () => {
    let env: ProxiedBus;
    let server: SidecacheServer;
    const connected = () => metric(server, 'sidecache_bus_connected', { bus: env.bus });

    beforeAll(async () => {
      env = await make();
      server = await startSidecache(`invalidation:\n  - ${env.entry('heartbeat: 1h')}\n`);
    });
    afterAll(async () => {
      await server?.stop(100);
      await env?.close();
    });

    /** Samples the connection counts until the bus has been connected for a while: never more than one. */
    async function atMostOneUntilSettled(): Promise<void> {
      const seen: number[] = [];
      let connectedSamples = 0;
      // Enough samples while connected for every extra retry chain (backoff capped at 5 s) to have fired.
      const settled = Date.now() + 4_000;
      while (Date.now() < settled || connectedSamples < 20) {
        seen.push(await env.connections(), env.proxy.open);
        if ((await connected()) === 1) connectedSamples++;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(Math.max(...seen), `connections seen: ${[...new Set(seen)].join(', ')}`).toBe(1);
    }

    it('keeps exactly one connection at the server through repeated outages with failed reconnects', async () => {
      expect(await env.connections()).toBe(1);
      for (let outage = 0; outage < 3; outage++) {
        const refusedBefore = env.proxy.refused;
        env.proxy.refuse(true);
        env.proxy.cut();
        await waitFor(async () => (await connected()) === 0, 'the bus to notice the cut');
        await waitFor(() => env.proxy.refused >= refusedBefore + 4, 'four failed reconnects', 15_000);
        env.proxy.refuse(false);
        await waitFor(async () => (await connected()) === 1, 'the bus to reconnect', 15_000);
      }
      await atMostOneUntilSettled();
      expect(await metric(server, 'sidecache_bus_gaps_total', { bus: env.bus })).toBe(3);
    });
  });
}
