/**
 * Issue 17 point 1: a client that wrote through one replica hears the answer only once the
 * invalidation is published, so its next read through another replica is fresh. The bus's
 * publish connection is held at a TCP proxy (a gate), never timed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { SidecacheServer } from '../../src/server.js';
import { type Origin, startOrigin } from '../helpers/origin.js';
import { connect, PG, pgUnreachable, unique } from '../helpers/pg.js';
import { redisUnreachable } from '../helpers/redis.js';
import { metric, startSidecache } from '../helpers/sidecache.js';
import { waitFor } from '../helpers/wait.js';
import { type ProxiedBus, proxiedRedisBus } from './buses-env.js';

const skip = (await pgUnreachable()) ?? (await redisUnreachable());

describe.skipIf(skip !== undefined)('issue 17: answers wait for the publish', () => {
  let bus: ProxiedBus | undefined;
  let origin: Origin | undefined;
  let server: SidecacheServer | undefined;
  afterEach(async () => {
    await server?.stop(100);
    await bus?.close();
    await origin?.close();
  });

  async function start(publishWaitMs?: number): Promise<SidecacheServer> {
    origin = await startOrigin((_req, res) => void res.writeHead(204).end());
    bus = await proxiedRedisBus();
    server = await startSidecache(
      `http:
  - { name: api, listen: "127.0.0.1:0", upstream: "${origin.url}" }
postgres:
  - { name: main, listen: "127.0.0.1:0", upstream: "postgres://${PG.host}:${PG.port}?sslmode=disable" }
invalidation:
  - ${bus.entry()}
`,
      { planWaitMs: 10_000, ...(publishWaitMs !== undefined && { publishWaitMs }) },
    );
    return server;
  }

  /** Holds new connections at the proxy: the publish connection, opened at the first publish, waits there until released. */
  function holdPublisher(): () => void {
    bus!.proxy.hold(true);
    return () => bus!.proxy.hold(false);
  }

  const sent = () => metric(server!, 'sidecache_bus_publishes_total', { bus: bus!.bus, result: 'sent' });

  it('holds the response of an unsafe HTTP method until its invalidation is published', async () => {
    const s = await start();
    const release = holdPublisher();
    const accepted = bus!.proxy.accepted;
    let answered = false;
    const post = fetch(`http://127.0.0.1:${s.httpListeners[0]!.address.port}/items`, { method: 'POST', body: 'x' }).then((res) => {
      answered = true;
      return res;
    });
    await waitFor(() => bus!.proxy.accepted > accepted, 'the publish connection at the proxy');
    // A round trip through the same process: its event loop ran, and the POST is still unanswered.
    await fetch(`${s.adminUrl}/healthz`);
    expect(answered).toBe(false);
    expect(await sent()).toBe(0);
    release();
    expect((await post).status).toBe(204);
    expect(await sent()).toBe(1);
  });

  it("holds a PostgreSQL write's ReadyForQuery until its invalidation is published", async () => {
    const s = await start();
    const table = unique('held_items');
    const admin = await connect(undefined);
    await admin.query(`CREATE TABLE ${table} (id int PRIMARY KEY, v text)`);
    const client = await connect(s.postgresListeners[0]!.address.port);
    try {
      const release = holdPublisher();
      const accepted = bus!.proxy.accepted;
      let answered = false;
      const insert = client.query(`INSERT INTO ${table} VALUES (1, 'a')`).then((r) => {
        answered = true;
        return r;
      });
      await waitFor(() => bus!.proxy.accepted > accepted, 'the publish connection at the proxy');
      // The row is in (the server answered CommandComplete); the client has not heard so yet.
      await waitFor(async () => (await admin.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n === 1, 'the insert at the server');
      await fetch(`${s.adminUrl}/healthz`);
      expect(answered).toBe(false);
      release();
      expect((await insert).rowCount).toBe(1);
      expect(await sent()).toBeGreaterThan(0);
    } finally {
      await client.end();
      await admin.query(`DROP TABLE IF EXISTS ${table}`);
      await admin.end();
    }
  });

  it('answers after the publish wait when the bus does not take the message, which then waits in the outbox', async () => {
    const s = await start(20);
    holdPublisher();
    const accepted = bus!.proxy.accepted;
    const res = await fetch(`http://127.0.0.1:${s.httpListeners[0]!.address.port}/items`, { method: 'DELETE' });
    expect(res.status).toBe(204);
    expect(bus!.proxy.accepted).toBeGreaterThan(accepted);
    bus!.proxy.hold(false);
    // The held connection gets through: the message is sent late, or kept and sent from the outbox.
    await waitFor(async () => (await sent()) === 1, 'the late publish', 15_000);
  });
});
