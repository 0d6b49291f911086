/** maxClientConnections: clients beyond it get 53300 at once, as PostgreSQL answers; the gauges count sessions. */
import { describe, expect, it } from 'vitest';
import type pg from 'pg';
import { connect, PG, pgUnreachable } from '../../helpers/pg.js';
import { metric, startSidecache } from '../../helpers/sidecache.js';
import { waitFor } from '../../helpers/wait.js';

const unreachable = await pgUnreachable();

describe.skipIf(unreachable !== undefined)('postgres listener: connection limit', () => {
  it('refuses clients beyond maxClientConnections with 53300, counts client and upstream connections, and admits again when one leaves', async () => {
    const server = await startSidecache(
      `postgres:\n  - { name: main, listen: "127.0.0.1:0", upstream: "postgres://${PG.host}:${PG.port}?sslmode=disable", maxClientConnections: 2 }\n`,
    );
    const port = server.postgresListeners[0]!.address.port;
    const clients: pg.Client[] = [];
    try {
      clients.push(await connect(port), await connect(port));
      await expect(connect(port)).rejects.toMatchObject({ code: '53300' });
      const labels = { protocol: 'postgres', listener: 'main' };
      expect(await metric(server, 'sidecache_client_connections', labels)).toBe(2);
      expect(await metric(server, 'sidecache_upstream_connections', labels)).toBe(2);
      await clients.shift()!.end();
      await waitFor(async () => (await metric(server, 'sidecache_client_connections', labels)) === 1, 'sidecache to see the client leave');
      clients.push(await connect(port));
      expect((await clients[1]!.query('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
    } finally {
      for (const c of clients) await c.end();
      await server.stop(100);
    }
  });
});
