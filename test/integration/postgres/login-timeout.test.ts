/**
 * Issue 16 point 7: a client that never finishes its login does not keep its connection (and its
 * descriptor) open. `loginTimeout` runs from connecting to the first ReadyForQuery, as PgBouncer's
 * client_login_timeout: before a startup packet the connection closes without a word (as the
 * postmaster does), during authentication the client gets FATAL 57014 "canceling authentication due
 * to timeout" (PostgreSQL's authentication_timeout). A session that logged in is never cut by it.
 */
import type net from 'node:net';
import { describe, expect, it } from 'vitest';
import { clusterUnavailable, useCluster } from '../../helpers/pg-cluster.js';
import { connect, PG, pgUnreachable, rawSocket } from '../../helpers/pg.js';
import { fields, readMessages, startup } from '../../helpers/pg-bytes.js';
import { metric, startSidecache } from '../../helpers/sidecache.js';
import { waitFor } from '../../helpers/wait.js';
import type { SidecacheServer } from '../../../src/server.js';

const unreachable = await pgUnreachable();
const noCluster = clusterUnavailable();
if (noCluster !== undefined) console.warn(`SKIPPED (authentication stall): ${noCluster}`);

async function withListener(upstream: string, extra: string, fn: (port: number, server: SidecacheServer) => Promise<void>): Promise<void> {
  const server = await startSidecache(`postgres:\n  - name: main\n    listen: "127.0.0.1:0"\n    upstream: "${upstream}"\n${extra}`, { planWaitMs: 10_000 });
  try {
    await fn(server.postgresListeners[0]!.address.port, server);
  } finally {
    await server.stop(100);
  }
}

/** Everything the socket receives until the server closes it. */
function untilClosed(socket: net.Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => undefined);
  return new Promise((resolve) => socket.once('close', () => resolve(Buffer.concat(chunks))));
}

describe.skipIf(unreachable !== undefined)('postgres listener: loginTimeout', () => {
  const upstream = `postgres://${PG.host}:${PG.port}?sslmode=disable`;

  it('closes a connection that sends nothing, without a word, and counts it', async () => {
    await withListener(upstream, '    loginTimeout: 200ms\n', async (port, server) => {
      const silent = await rawSocket(port);
      const received = await untilClosed(silent);
      expect(received.length).toBe(0);
      expect(await metric(server, 'sidecache_login_timeouts_total', { listener: 'main' })).toBe(1);
      await waitFor(async () => (await metric(server, 'sidecache_client_connections', { protocol: 'postgres', listener: 'main' })) === 0, 'the gauge to drop');
    });
  });

  it('never cuts a session that has logged in', async () => {
    await withListener(upstream, '    loginTimeout: 200ms\n', async (port, server) => {
      const client = await connect(port);
      try {
        let ended = false;
        client.on('end', () => (ended = true));
        // A session that has logged in outlives the timeout (a timer cleared at ReadyForQuery).
        await new Promise((r) => setTimeout(r, 400));
        expect((await client.query('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
        expect(ended).toBe(false);
        expect(await metric(server, 'sidecache_login_timeouts_total', { listener: 'main' })).toBe(0);
      } finally {
        await client.end();
      }
    });
  });

  it('is off at 0', async () => {
    await withListener(upstream, '    loginTimeout: 0\n', async (port, server) => {
      const silent = await rawSocket(port);
      const closed = untilClosed(silent);
      await new Promise((r) => setTimeout(r, 300));
      expect(await metric(server, 'sidecache_client_connections', { protocol: 'postgres', listener: 'main' })).toBe(1);
      silent.destroy();
      await closed;
    });
  });
});

describe.skipIf(noCluster !== undefined)('postgres listener: loginTimeout during authentication', () => {
  const cluster = useCluster({ auth: 'md5' });

  it('answers FATAL 57014 to a client that stops answering the password request', async () => {
    await withListener(`postgres://127.0.0.1:${cluster.port}/postgres?sslmode=disable`, '    loginTimeout: 300ms\n', async (port, server) => {
      const socket = await rawSocket(port);
      const received = untilClosed(socket);
      socket.write(startup({ user: 'postgres', database: 'postgres' }));
      const messages = readMessages(await received);
      // The server's password request reached the client; the client never answered it.
      expect(messages[0]?.code).toBe('R');
      const error = messages.find((m) => m.code === 'E');
      expect(error && fields(error.body)).toMatchObject({ S: 'FATAL', C: '57014', M: 'canceling authentication due to timeout' });
      expect(await metric(server, 'sidecache_login_timeouts_total', { listener: 'main' })).toBe(1);
      await waitFor(
        async () => (await metric(server, 'sidecache_upstream_connections', { protocol: 'postgres', listener: 'main' })) === 0,
        'the upstream to close',
      );
    });
  });
});
