/** The answer to a client past `postgres[].maxClientConnections`, as PostgreSQL answers one past max_connections. */
import type net from 'node:net';
import { encodeError } from './messages.js';

/** How long a refused client may take to close after its 53300. */
const REFUSED_LINGER_MS = 1000;

/**
 * What PostgreSQL answers past max_connections: FATAL 53300, then the connection closes. Sent
 * before the client's startup packet is read, as the server does for a full backend table.
 */
export function refuseConnection(socket: net.Socket, limit: number): void {
  socket.on('error', () => undefined);
  // Read what the client sends (its startup packet) so closing does not reset the connection
  // before the error is read, and do not wait on a client that never closes its side.
  socket.resume();
  socket.setTimeout(REFUSED_LINGER_MS, () => socket.destroy());
  socket.end(encodeError('FATAL', '53300', `sorry, too many clients already (sidecache maxClientConnections is ${limit})`));
}
