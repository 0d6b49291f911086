import { afterEach, describe, expect, it } from 'vitest';
import type { SidecacheServer } from '../../src/server.js';
import { pgUnreachable } from '../helpers/pg.js';
import { redisUnreachable } from '../helpers/redis.js';
import { startSidecache } from '../helpers/sidecache.js';
import { waitFor } from '../helpers/wait.js';
import { type ProxiedBus, proxiedPostgresBus, proxiedRedisBus } from './buses-env.js';

const skips = { postgres: await pgUnreachable(), redis: await redisUnreachable() };

/**
 * Issue 16 point 5 (buses): closing a bus respects the grace of `stop()`. Redis QUIT and the
 * PostgreSQL Terminate wait for the server; over a half-open connection (the proxy swallows what
 * the server sends) no answer comes, and the bus closes its socket when the grace is over.
 */
for (const [kind, make] of [
  ['postgres', proxiedPostgresBus],
  ['redis', proxiedRedisBus],
] as const) {
  describe.skipIf(skips[kind] !== undefined)(`${kind} bus: stop`, () => {
    let env: ProxiedBus | undefined;
    afterEach(async () => {
      await env?.close();
    });

    async function stopWithin(s: SidecacheServer, graceMs: number): Promise<void> {
      let done = false;
      const stopping = s.stop(graceMs).then(() => void (done = true));
      // The deadline only turns a hang into a failure; a passing stop ends at the grace.
      await waitFor(() => done, 'stop() to end once its grace is over', 10_000);
      await stopping;
    }

    it('ends within the grace when the bus connection is half-open, its socket closed', async () => {
      const e = (env = await make());
      const s = await startSidecache(`invalidation:\n  - ${e.entry('heartbeat: 1h')}\n`);
      e.proxy.stall('toClient');
      await stopWithin(s, 200);
      await waitFor(() => e.proxy.open === 0, 'the bus socket to be closed');
    });

    it('closes a healthy bus politely: the server sees it go', async () => {
      const e = (env = await make());
      const s = await startSidecache(`invalidation:\n  - ${e.entry()}\n`);
      expect(await e.connections()).toBe(1);
      await stopWithin(s, 5_000);
      await waitFor(async () => (await e.connections()) === 0, 'the server to see the bus leave');
    });
  });
}
