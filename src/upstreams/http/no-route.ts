/**
 * What a listener answers itself when a request reaches no upstream: on a gateway (`routes.ts`),
 * no route matches, the host is not one the routes name, or the Host field is malformed; on any
 * listener, a target it does not serve or a request node:http could not parse.
 */
import http, { type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { formatCacheStatus } from './cache-status.js';
import type { NoRoute } from './routes.js';

/** What a gateway answers a request no route takes (no upstream is asked). */
export const NO_ROUTE_STATUS = { 'no-route': 404, 'unknown-host': 421 } as const satisfies Record<NoRoute, number>;

/** 404 when no route matches; 421 Misdirected Request (RFC 9110 §15.5.20) for a host no route names, with `knownHostsOnly`. */
export function noRoute(res: ServerResponse, reason: NoRoute): void {
  const status = NO_ROUTE_STATUS[reason];
  const text = reason === 'no-route' ? 'no route of this listener matches the request\n' : 'this listener serves no such host\n';
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-status': formatCacheStatus({ detail: reason === 'no-route' ? 'NO-ROUTE' : 'UNKNOWN-HOST' }),
  });
  res.end(text);
}

/** RFC 9112 §3.2: a Host field that is malformed or sent more than once. */
export function badHost(res: ServerResponse): void {
  const text = 'request refused: expected one Host field naming a host\n';
  res.writeHead(400, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-status': formatCacheStatus({ detail: 'BAD-HOST' }),
    connection: 'close',
  });
  res.end(text);
}

/** The same answer on a raw socket (an Upgrade request), closing it. */
export function noRouteHead(reason: NoRoute): string {
  const status = NO_ROUTE_STATUS[reason];
  return `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`;
}

/** RFC 9112 §3.2: a target that is neither origin-form nor absolute-form for this listener. */
export function badTarget(res: ServerResponse): void {
  const text = 'request target refused: expected a path, or an absolute http:// URL naming this listener\n';
  res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text), connection: 'close' });
  res.end(text);
}

/** Malformed or oversized requests get Node's standard 4xx, and only their connection closes. */
export function clientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (!socket.writable || err.code === 'ECONNRESET') {
    socket.destroy();
    return;
  }
  const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
  socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}
