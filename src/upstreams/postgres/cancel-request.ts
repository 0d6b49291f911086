/** A CancelRequest: sent to the upstream as it is, answered once the server has closed. */
import { connectUpstream } from './upstream-socket.js';
import type { PgContext } from './context.js';

/**
 * The BackendKeyData the client holds is the upstream's own: the request goes there as it is.
 * PostgreSQL closes a cancel connection once it has signalled the backend, and drivers (psycopg,
 * asyncpg) take that close as "cancel delivered" and send their next query: the client's side
 * closes only after the server's, or that next query would be the one cancelled.
 * (https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-CANCELING-REQUESTS)
 */
export async function forwardCancel(ctx: PgContext, bytes: Buffer): Promise<void> {
  try {
    const socket = await connectUpstream({ ...ctx.target, sslmode: 'disable' });
    await new Promise<void>((resolve) => {
      // A server that never closes must not hold the client forever.
      const timer = setTimeout(() => socket.destroy(), ctx.config.connectTimeout);
      socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.on('error', (err) => ctx.log.debug('cancel request failed', { err: err.message }));
      socket.resume();
      // Like libpq's PQcancel: send, then wait for the server to close.
      socket.write(bytes);
    });
  } catch (err) {
    ctx.log.debug('cancel request failed', { err: (err as Error).message });
  }
}
