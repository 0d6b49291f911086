/**
 * `PURGE <url>`: removes every stored variant of that URL (as Varnish and Squid do), through the
 * one invalidation path, so the other replicas are told too.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { hasBearer } from '../../auth.js';
import { urlTag } from '../../cache/tags.js';
import { isLoopback } from '../../listen.js';
import { formatCacheStatus } from './cache-status.js';
import type { ListenerContext } from './context.js';

/** Answers a PURGE: allowed with the admin token as Bearer when one is set, else from loopback only. */
export function purge(req: IncomingMessage, res: ServerResponse, url: string, ctx: ListenerContext, adminToken: string): void {
  req.resume();
  const allowed = adminToken === '' ? isLoopback(req.socket.remoteAddress?.replace(/^::ffff:/, '') ?? '') : hasBearer(req.headers.authorization, adminToken);
  if (!allowed) {
    const error = adminToken === '' ? 'PURGE is allowed from loopback only' : 'PURGE requires Authorization: Bearer <admin.token>';
    return writePurge(res, adminToken === '' ? 403 : 401, { error });
  }
  // Answered once the other replicas were told too (or the publish wait ran out; the outbox keeps it).
  const { removed, published } = ctx.invalidate({ tags: [urlTag(ctx.name, url)] });
  void published.then(() => writePurge(res, 200, { purged: removed }));
}

/** PURGE's JSON answer (the client may have left while the publish ran: then nothing is written). */
function writePurge(res: ServerResponse, status: number, body: object): void {
  if (res.destroyed) return;
  const text = JSON.stringify(body) + '\n';
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-status': formatCacheStatus({ fwd: 'method' }),
  });
  res.end(text);
}
