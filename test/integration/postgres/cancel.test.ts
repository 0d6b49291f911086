/**
 * CancelRequest like PostgreSQL: the client's cancel connection closes only after the server has
 * closed its own (it does so once it has signalled the backend). Drivers take the close as "cancel
 * delivered" and send their next query at once; closing earlier let that query be cancelled.
 * A relay between sidecache and PostgreSQL, written here, holds the server's close of the cancel
 * connection until the test releases it.
 */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { startSidecache } from '../../helpers/sidecache.js';
import { connect, PG, pgUnreachable, rawSocket } from '../../helpers/pg.js';
import { gate, waitFor } from '../../helpers/wait.js';

const unreachable = await pgUnreachable();

const CANCEL_REQUEST_CODE = 80877102;

/** Forwards to PostgreSQL; the server's end of a cancel connection waits for `release`. */
async function startRelay() {
  const hold = gate();
  let cancelsClosedByServer = 0;
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const upstream = net.connect(PG.port, PG.host);
    let isCancel = false;
    client.once('data', (first) => {
      isCancel = first.length >= 8 && first.readInt32BE(4) === CANCEL_REQUEST_CODE;
      upstream.write(first);
      client.pipe(upstream);
    });
    upstream.on('data', (chunk) => client.write(chunk));
    upstream.on('end', () => {
      if (!isCancel) return void client.end();
      cancelsClosedByServer++;
      void hold.promise.then(() => client.end());
    });
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    release: hold.release,
    cancelsClosedByServer: () => cancelsClosedByServer,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe.skipIf(unreachable !== undefined)('postgres listener: CancelRequest', () => {
  it("closes the client's cancel connection only after PostgreSQL has closed its side", async () => {
    const relay = await startRelay();
    const server = await startSidecache(
      `postgres:\n  - { name: main, listen: "127.0.0.1:0", upstream: "postgres://127.0.0.1:${relay.port}?sslmode=disable" }\n`,
    );
    const port = server.postgresListeners[0]!.address.port;
    const client = await connect(port);
    let socket: net.Socket | undefined;
    try {
      const { processID, secretKey } = client as unknown as { processID: number; secretKey: number };
      const cancel = Buffer.alloc(16);
      cancel.writeInt32BE(16, 0);
      cancel.writeInt32BE(CANCEL_REQUEST_CODE, 4);
      cancel.writeInt32BE(processID, 8);
      cancel.writeInt32BE(secretKey, 12);
      socket = await rawSocket(port);
      let closed = false;
      socket.on('close', () => (closed = true));
      socket.resume();
      // Like libpq's PQcancel: send, then wait for the server's close without closing first.
      socket.write(cancel);
      await waitFor(() => relay.cancelsClosedByServer() === 1, 'PostgreSQL to close the cancel connection');
      // A round trip through sidecache after the server's answer: an early close would have arrived by now.
      expect((await client.query('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
      // The server has closed, but its close has not reached sidecache: the client must still wait.
      expect(closed).toBe(false);
      relay.release();
      await waitFor(() => closed, "the client's cancel connection to close");
      // The session was idle: nothing was cancelled, and its next query runs.
      expect((await client.query('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
    } finally {
      relay.release();
      socket?.destroy();
      await client.end();
      await server.stop(100);
      await relay.close();
    }
  });
});
