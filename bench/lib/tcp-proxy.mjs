// A TCP proxy the soak puts between sidecache and the shared Redis, so that "killing the bus" cuts
// sidecache's connection without stopping a server others use (the idea of test/helpers/tcp-proxy.ts,
// reduced to what the soak needs): `cut` resets every connection, `refuse` resets new ones on arrival.
import net from 'node:net';

export async function startTcpProxy(target) {
  const pairs = new Set();
  let refusing = false;
  let accepted = 0;
  let refused = 0;
  let maxOpen = 0;

  const listener = net.createServer({ pauseOnConnect: true }, (client) => {
    accepted++;
    client.on('error', () => client.destroy());
    if (refusing) {
      refused++;
      client.resetAndDestroy();
      return;
    }
    const server = net.connect({ host: target.host, port: target.port });
    const pair = { client, server };
    pairs.add(pair);
    maxOpen = Math.max(maxOpen, pairs.size);
    const drop = () => {
      pairs.delete(pair);
      client.destroy();
      server.destroy();
    };
    server.on('error', drop);
    client.on('close', drop);
    server.on('close', drop);
    client.pipe(server);
    server.pipe(client);
    client.resume();
  });
  await new Promise((resolve) => listener.listen(0, '127.0.0.1', resolve));

  return {
    host: '127.0.0.1',
    port: listener.address().port,
    /** Connections open through the proxy now, and the most ever open at once. */
    get open() {
      return pairs.size;
    },
    get maxOpen() {
      return maxOpen;
    },
    get accepted() {
      return accepted;
    },
    get refused() {
      return refused;
    },
    /** Resets every open connection: the client sees ECONNRESET, as when a server host goes away. */
    cut() {
      for (const pair of [...pairs]) {
        pairs.delete(pair);
        pair.client.resetAndDestroy();
        pair.server.destroy();
      }
    },
    refuse(on) {
      refusing = on;
    },
    async close() {
      this.cut();
      await new Promise((resolve) => listener.close(() => resolve()));
    },
  };
}
