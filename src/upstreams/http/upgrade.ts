/**
 * Upgrade requests (RFC 9110 §7.8). A connection becomes a tunnel only after the upstream answered
 * `101 Switching Protocols` to a protocol the listener allows (`http[].upgradeProtocols`); until
 * then, and for every other Upgrade request, the client's bytes are HTTP and are parsed as such.
 * node:http hands every Upgrade request to the `upgrade` event with the connection taken off its
 * parser: a request that is not tunnelled is put back in front of a fresh parser (without its
 * Upgrade fields), so it is answered as a plain request and the connection stays HTTP.
 */
import type { IncomingHttpHeaders, IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { formatCacheStatus } from './cache-status.js';
import type { ListenerContext } from './context.js';
import { classifyUpstreamError, errorText } from './gateway-error.js';
import { clientResponseHeaders, forwardRequestHeaders } from './headers.js';

/** Whether every protocol the `Upgrade` field names (`websocket`, `h2c`, `foo/2`) is in `allowed` (lower case). */
export function isAllowedUpgrade(value: string | undefined, allowed: ReadonlySet<string>): boolean {
  if (value === undefined) return false;
  const names = value.split(',').map((p) => p.trim().split('/')[0]!.toLowerCase());
  return names.length > 0 && names.every((n) => n !== '' && allowed.has(n));
}

/**
 * Hands an Upgrade request that is not tunnelled back to `server` as a plain request on the same
 * connection: its head is written again without `Upgrade` (and the `upgrade` token of
 * `Connection`) in front of the bytes that followed it, and the connection gets a new parser.
 */
export function reparseWithoutUpgrade(server: Server, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const lines = [`${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/${req.httpVersion}`];
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (lower === 'upgrade') continue;
    if (lower === 'connection') {
      const kept = raw[i + 1]!.split(',')
        .map((t) => t.trim())
        .filter((t) => t !== '' && t.toLowerCase() !== 'upgrade');
      if (kept.length > 0) lines.push(`${name}: ${kept.join(', ')}`);
      continue;
    }
    lines.push(`${name}: ${raw[i + 1]}`);
  }
  // The parser checked every name and value (no CR, LF or NUL), so they are written back as read.
  socket.unshift(Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), head]));
  // node:http documents emitting 'connection' to hand it a socket.
  server.emit('connection', socket);
}

/**
 * Forwards an allowed Upgrade request through the listener's pool, with the same request fields
 * as every other request (`headers.ts`). A `101` joins the two connections; any other answer is
 * passed to the client, and the connection then closes (its bytes after the request were meant
 * for the new protocol, never for HTTP).
 */
export function forwardUpgrade(ctx: ListenerContext, req: IncomingMessage, socket: Duplex, head: Buffer, started: number): void {
  const upstreamStart = ctx.clock.now();
  let headSent = false;
  let controller: Dispatcher.DispatchController | undefined;
  const fail = (err: Error): void => {
    ctx.log.debug('upgrade failed', { err: errorText(err) });
    ctx.report('error', started);
    // Before its answer, the failure is the upstream's (a refused connection, a timeout): counted like any request's.
    if (!headSent) ctx.upstreamFailed(err);
    if (headSent || !socket.writable) {
      socket.destroy();
      return;
    }
    const failure = classifyUpstreamError(err);
    const body = `${failure.message}\n`;
    socket.end(
      `HTTP/1.1 ${failure.status} ${failure.status === 504 ? 'Gateway Timeout' : 'Bad Gateway'}\r\n` +
        `content-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
        `cache-status: ${formatCacheStatus({ fwd: 'bypass', detail: failure.detail })}\r\nconnection: close\r\n\r\n${body}`,
    );
  };
  socket.on('error', () => socket.destroy());
  socket.once('close', () => {
    if (!headSent) controller?.abort(new Error('the client closed the connection'));
  });
  const headers = forwardRequestHeaders(req, { upstreamHost: ctx.upstream.host, mode: ctx.config.forwardedHeaders, unconditional: false });
  const writeHead = (statusCode: number, statusMessage: string, fields: string[]): void => {
    headSent = true;
    let text = `HTTP/1.1 ${statusCode} ${statusMessage}\r\n`;
    for (let i = 0; i < fields.length; i += 2) text += `${fields[i]}: ${fields[i + 1]}\r\n`;
    socket.write(`${text}\r\n`);
  };
  try {
    ctx.upstream.upgrade({ method: req.method ?? 'GET', url: req.url ?? '/', headers }, req.headers.upgrade ?? '', {
      onRequestStart(c) {
        controller = c;
        if (socket.destroyed) c.abort(new Error('the client closed the connection'));
      },
      onRequestUpgrade(_c, statusCode, upstreamHeaders, upstream) {
        const fields = responseFields(ctx, upstreamHeaders);
        fields.push('connection', 'Upgrade', 'upgrade', String(upstreamHeaders.upgrade ?? req.headers.upgrade));
        writeHead(statusCode, 'Switching Protocols', fields);
        ctx.report('bypass', started, ctx.clock.now() - upstreamStart);
        tunnel(socket, upstream, head);
      },
      onResponseStart(_c, statusCode, upstreamHeaders, statusMessage) {
        // Informational answers (103 Early Hints) are not passed on: the final one follows.
        if (statusCode < 200) return;
        const fields = responseFields(ctx, upstreamHeaders);
        fields.push('connection', 'close');
        writeHead(statusCode, statusMessage ?? '', fields);
      },
      onResponseData(c, chunk) {
        if (!socket.write(chunk)) {
          c.pause();
          socket.once('drain', () => c.resume());
        }
      },
      onResponseEnd() {
        ctx.report('bypass', started, ctx.clock.now() - upstreamStart);
        socket.end();
      },
      onResponseError(_c, err) {
        fail(err);
      },
    });
  } catch (err) {
    // A full queue (UpstreamQueueFullError): 503 at once, as for any request.
    fail(err as Error);
  }
}

function responseFields(ctx: ListenerContext, headers: IncomingHttpHeaders): string[] {
  const fields = clientResponseHeaders(headers, {
    tagHeader: ctx.tagHeader,
    exposeTags: ctx.config.exposeTags,
    mode: ctx.config.forwardedHeaders,
    dropSetCookie: false,
  });
  fields.push('cache-status', formatCacheStatus({ fwd: 'bypass' }));
  return fields;
}

/** Joins the client's connection and the upstream's after a 101; either closing closes both. */
function tunnel(socket: Duplex, upstream: Duplex, head: Buffer): void {
  if (head.length > 0) upstream.write(head);
  upstream.pipe(socket).pipe(upstream);
  const close = (): void => {
    upstream.destroy();
    socket.destroy();
  };
  upstream.on('error', close);
  socket.on('error', close);
  upstream.on('close', close);
  socket.on('close', close);
}
