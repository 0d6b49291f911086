/** A raw wire-protocol session through sidecache, for the byte-level tests of this folder. */
import type net from 'node:net';
import { readMessages, startup } from '../../helpers/pg-bytes.js';
import { PG, rawSocket } from '../../helpers/pg.js';

/** Sends bytes and collects the answer up to the `ready`-th ReadyForQuery. */
export function exchange(socket: net.Socket, bytes: Buffer, ready: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let all = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      all = Buffer.concat([all, chunk]);
      if (readMessages(all).filter((m) => m.code === 'Z').length >= ready) {
        socket.off('data', onData);
        socket.off('error', reject);
        resolve(all);
      }
    };
    socket.on('data', onData);
    // Removed once answered: a session exchanges many times, each with a listener of its own.
    socket.once('error', reject);
    socket.write(bytes);
  });
}

/** A session through sidecache at `port`, started with `params` besides user and database. */
export async function rawSession(port: number, params: Record<string, string> = {}): Promise<net.Socket> {
  const socket = await rawSocket(port);
  await exchange(socket, startup({ user: PG.user, database: PG.database, ...params }), 1);
  return socket;
}
