import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SidecacheServer } from '../../src/server.js';
import { pgUnreachable } from '../helpers/pg.js';
import { redisUnreachable } from '../helpers/redis.js';
import { metric, startSidecache } from '../helpers/sidecache.js';
import { waitFor } from '../helpers/wait.js';
import { type ProxiedBus, proxiedPostgresBus, proxiedRedisBus } from './buses-env.js';

const skips = { postgres: await pgUnreachable(), redis: await redisUnreachable() };

/**
 * Issue 16 point 3: a half-open connection (the network keeps sidecache's socket open and stops
 * carrying one direction) is an outage. The proxy stalls one direction; the bus's heartbeat goes
 * unanswered, the bus reports the outage, reconnects, and flushes what it may have missed.
 */
for (const [kind, make] of [
  ['postgres', proxiedPostgresBus],
  ['redis', proxiedRedisBus],
] as const) {
  describe.skipIf(skips[kind] !== undefined)(`${kind} bus: a half-open connection is noticed`, () => {
    let env: ProxiedBus;
    let server: SidecacheServer;
    const connected = () => metric(server, 'sidecache_bus_connected', { bus: env.bus });
    const ready = async () => (await fetch(`${server.adminUrl}/readyz`)).status;

    beforeAll(async () => {
      env = await make();
      server = await startSidecache(`invalidation:\n  - ${env.entry('heartbeat: 100ms')}\n`);
    });
    afterAll(async () => {
      await server?.stop(100);
      await env?.close();
    });

    it('stays up while the heartbeat is answered', async () => {
      // Ten beats' worth of samples: an answered heartbeat is never taken for a loss.
      for (let beat = 0; beat < 20; beat++) {
        expect(await connected()).toBe(1);
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(await metric(server, 'sidecache_bus_gaps_total', { bus: env.bus })).toBe(0);
      expect(env.proxy.accepted).toBe(1);
    });

    it.each([
      ['toClient', 1],
      ['toServer', 2],
    ] as const)('stalled %s: reported down, then back with a flush of what was missed', async (direction, gaps) => {
      server.store.set('k:stale', { body: Buffer.from('x'), ttlMs: 60_000, tags: ['user:1'] });
      env.proxy.stall(direction);
      // This message travels the stalled connection (or finds no subscriber): it is lost.
      await env.publish('{"tags":["user:1"]}');
      await waitFor(async () => (await metric(server, 'sidecache_bus_gaps_total', { bus: env.bus })) === gaps, 'the missed heartbeat, and the reconnect');
      expect(server.store.has('k:stale')).toBe(false);
      await waitFor(async () => (await connected()) === 1 && (await ready()) === 200, 'the bus to be up again');
      // Sidecache closed the stalled connection (a FIN that crosses the stall is lost, as on a real network, so the server may still hold it).
      await waitFor(() => env.proxy.open === 1, 'sidecache to close the stalled connection');
      if (direction === 'toClient') await waitFor(async () => (await env.connections()) === 1, 'the stalled connection to be closed at the server');
      server.store.set('k:after', { body: Buffer.from('y'), ttlMs: 60_000, tags: ['user:2'] });
      await env.publish('{"tags":["user:2"]}');
      await waitFor(() => !server.store.has('k:after'), 'messages after the reconnect');
    });
  });
}
