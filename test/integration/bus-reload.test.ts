import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import type { SidecacheServer } from '../../src/server.js';
import { pgUnreachable } from '../helpers/pg.js';
import { redisUnreachable } from '../helpers/redis.js';
import { metric, startSidecache } from '../helpers/sidecache.js';
import { waitFor } from '../helpers/wait.js';
import { type ProxiedBus, proxiedPostgresBus, proxiedRedisBus } from './buses-env.js';

const skips = { postgres: await pgUnreachable(), redis: await redisUnreachable() };

const yamlOf = (entry: string): string => `invalidation:\n  - ${entry}\n`;
const configOf = (entry: string) => parseConfig(`admin: { listen: "127.0.0.1:0" }\n${yamlOf(entry)}`, 'test.yaml', process.env);

/**
 * Issue 16 point 4: a reload that changes a bus must not open a window in which nothing listens
 * unnoticed. The changed bus (same name, new URL) is reached through the proxy, which holds or
 * refuses connections to place publishes inside the swap.
 */
for (const [kind, make] of [
  ['postgres', proxiedPostgresBus],
  ['redis', proxiedRedisBus],
] as const) {
  describe.skipIf(skips[kind] !== undefined)(`${kind} bus: a reload that changes it`, () => {
    let env: ProxiedBus | undefined;
    let server: SidecacheServer | undefined;
    afterEach(async () => {
      env?.proxy.hold(false);
      env?.proxy.refuse(false);
      await server?.stop(100);
      await env?.close();
    });
    const gauge = (e: ProxiedBus, s: SidecacheServer) => metric(s, 'sidecache_bus_connected', { bus: e.bus });
    const gaps = (e: ProxiedBus, s: SidecacheServer) => metric(s, 'sidecache_bus_gaps_total', { bus: e.bus });

    it('hands the outbox of the bus it replaces to the new one, which publishes it (issue 17)', async () => {
      const e = (env = await make());
      const s = (server = await startSidecache(yamlOf(e.entry())));
      e.proxy.refuse(true);
      e.proxy.cut();
      await waitFor(async () => (await gauge(e, s)) === 0, 'the bus to be down');
      await s.fanOut.invalidate({ tags: ['user:7'] }, 'test').published;
      expect(await metric(s, 'sidecache_bus_outbox_names', { bus: e.bus })).toBe(1);
      await s.reload(configOf(e.entry('heartbeat: 4s')));
      expect(s.buses[0]!.outbox).toBe(1);
      const sentBefore = await metric(s, 'sidecache_bus_publishes_total', { bus: e.bus, result: 'sent' });
      e.proxy.refuse(false);
      await waitFor(
        async () => (await metric(s, 'sidecache_bus_publishes_total', { bus: e.bus, result: 'sent' })) > sentBefore,
        'the outbox published',
        10_000,
      );
      expect(s.buses[0]!.outbox).toBe(0);
    });

    it('subscribes the new bus before it stops the old one: a message published during the swap is applied', async () => {
      const e = (env = await make());
      const s = (server = await startSidecache(yamlOf(e.entry('', true))));
      s.store.set('k', { body: Buffer.from('x'), ttlMs: 60_000, tags: ['user:1'] });
      e.proxy.hold(true);
      const reloading = s.reload(configOf(e.entry()));
      await waitFor(() => e.proxy.accepted === 1, 'the new bus to be connecting');
      await e.publish('{"tags":["user:1"]}');
      await waitFor(() => !s.store.has('k'), 'the old subscription to apply the message');
      // The old subscription still listens: the bus is not reported down meanwhile.
      expect(await gauge(e, s)).toBe(1);
      expect((await fetch(`${s.adminUrl}/readyz`)).status).toBe(200);
      e.proxy.hold(false);
      expect((await reloading).applied).toContain('invalidation');
      expect(await gauge(e, s)).toBe(1);
      expect(await gaps(e, s)).toBe(0);
      await waitFor(async () => (await e.connections()) === 1, 'the old connection to be closed');
      s.store.set('k2', { body: Buffer.from('y'), ttlMs: 60_000, tags: ['user:2'] });
      await e.publish('{"tags":["user:2"]}');
      await waitFor(() => !s.store.has('k2'), 'the new subscription to apply messages');
    });

    it('flushes when the bus it replaces was down (messages published meanwhile were lost)', async () => {
      const e = (env = await make());
      const s = (server = await startSidecache(yamlOf(e.entry('heartbeat: 1h'))));
      e.proxy.refuse(true);
      e.proxy.cut();
      await waitFor(async () => (await gauge(e, s)) === 0, 'the old bus to be down');
      s.store.set('k', { body: Buffer.from('x'), ttlMs: 60_000, tags: ['user:1'] });
      await e.publish('{"tags":["user:1"]}');
      await s.reload(configOf(e.entry('', true)));
      expect(s.store.has('k')).toBe(false);
      expect(await gaps(e, s)).toBe(1);
      expect(await gauge(e, s)).toBe(1);
      expect((await fetch(`${s.adminUrl}/readyz`)).status).toBe(200);
    });
  });
}
