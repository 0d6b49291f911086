import net from 'node:net';

/**
 * A TCP proxy a test puts between sidecache and a real server, to make outages without touching
 * the server (other work shares it): `cut` drops every connection, `refuse` drops new ones as they
 * arrive, `hold` keeps new ones waiting before they reach the server, and `stall` stops one
 * direction of the open connections (a half-open network: bytes and FIN of that direction are
 * swallowed, both ends keep their sockets and hear nothing).
 */
export interface TcpProxy {
  readonly host: string;
  readonly port: number;
  /** Connections the client holds open now (it has neither closed nor sent FIN). */
  readonly open: number;
  /** Connections accepted since the start, and those of them dropped at once by `refuse`. */
  readonly accepted: number;
  readonly refused: number;
  /** Destroys every open connection, both sides. */
  cut(): void;
  /** While on, a new connection is accepted and reset at once (the server seems to refuse it). */
  refuse(on: boolean): void;
  /** While on, a new connection is accepted and left waiting; turning it off connects those waiting. */
  hold(on: boolean): void;
  /**
   * Stops forwarding one direction of the connections open now: `toClient` swallows what the
   * server sends, `toServer` what the client sends. Later connections are forwarded normally.
   */
  stall(direction: 'toClient' | 'toServer'): void;
  close(): Promise<void>;
}

interface Pair {
  client: net.Socket;
  server: net.Socket | undefined;
  toClient: boolean;
  toServer: boolean;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const pairs = new Set<Pair>();
  /** Every socket not yet closed, so that `close` can end the half-open ones too. */
  const sockets = new Set<net.Socket>();
  const track = (socket: net.Socket): void => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  };
  const held: Pair[] = [];
  let refusing = false;
  let holding = false;
  let accepted = 0;
  let refused = 0;

  const forward = (pair: Pair): void => {
    const { client } = pair;
    const server = net.connect({ port: target.port, host: target.host, allowHalfOpen: true });
    pair.server = server;
    track(server);
    client.on('data', (chunk) => void (pair.toServer && server.write(chunk)));
    server.on('data', (chunk) => void (pair.toClient && client.write(chunk)));
    // A FIN travels only the directions still forwarded.
    client.on('end', () => {
      pairs.delete(pair);
      if (pair.toServer) server.end();
    });
    server.on('end', () => void (pair.toClient && client.end()));
    // The client going away frees the server side; the server going away reaches the client unless that direction stalls.
    const drop = (): void => {
      pairs.delete(pair);
      client.destroy();
      server.destroy();
    };
    client.on('close', drop);
    server.on('close', () => void (pair.toClient ? drop() : server.destroy()));
    server.on('error', () => void (pair.toClient ? drop() : server.destroy()));
    client.resume();
  };

  const cut = (): void => {
    for (const pair of [...pairs]) {
      pairs.delete(pair);
      pair.client.resetAndDestroy();
      pair.server?.destroy();
    }
  };

  const listener = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (client) => {
    accepted++;
    track(client);
    client.on('error', () => client.destroy());
    if (refusing) {
      refused++;
      client.resetAndDestroy();
      return;
    }
    const pair: Pair = { client, server: undefined, toClient: true, toServer: true };
    pairs.add(pair);
    client.on('close', () => pairs.delete(pair));
    if (holding) held.push(pair);
    else forward(pair);
  });
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const port = (listener.address() as net.AddressInfo).port;
  return {
    host: '127.0.0.1',
    port,
    get open() {
      return pairs.size;
    },
    get accepted() {
      return accepted;
    },
    get refused() {
      return refused;
    },
    cut,
    refuse(on) {
      refusing = on;
    },
    hold(on) {
      holding = on;
      if (!on) for (const pair of held.splice(0)) if (!pair.client.destroyed) forward(pair);
    },
    stall(direction) {
      for (const pair of pairs) pair[direction] = false;
    },
    async close() {
      cut();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => listener.close(() => resolve()));
    },
  };
}
