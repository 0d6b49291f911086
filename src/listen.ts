import type http from 'node:http';
import type { Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { parseListen } from './config/schema.js';
import { SidecacheError } from './errors.js';

/** Binds `server` to a configured `host:port`; a failure names the address and the reason. */
export function listen(server: Server, address: string, what: string): Promise<AddressInfo> {
  const parsed = parseListen(address);
  if (parsed === undefined) return Promise.reject(new SidecacheError('SC_ERR_LISTEN', `${what}: cannot parse address ${address}`));
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(new SidecacheError('SC_ERR_LISTEN', `${what} cannot listen on ${address}: ${err.code ?? err.message}`, { cause: err }));
    };
    server.once('error', onError);
    server.listen(parsed.port, parsed.host, () => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    });
  });
}

/** `host:port` of a bound socket, with IPv6 hosts in brackets (RFC 3986 §3.2.2). */
export function formatAddress(info: AddressInfo): string {
  return info.family === 'IPv6' ? `[${info.address}]:${info.port}` : `${info.address}:${info.port}`;
}

/** `http://host:port` of a bound socket. */
export function httpUrlOf(info: AddressInfo): string {
  return `http://${formatAddress(info)}`;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/** A server to close: a node:http server also knows its connections, a plain net.Server does not. */
type Closable = Server & Partial<Pick<http.Server, 'closeAllConnections' | 'closeIdleConnections'>>;

/**
 * Stops accepting and lets requests in flight finish; at `graceMs`, closes what is left (node:http
 * servers close their own connections; `force` closes the rest, such as upgraded sockets or a
 * net.Server's sessions). True when it had to force.
 */
export function closeGracefully(server: Closable, graceMs: number, force?: () => void): Promise<boolean> {
  if (!server.listening) return Promise.resolve(false);
  return new Promise((resolve) => {
    let forced = false;
    const timer = setTimeout(() => {
      forced = true;
      server.closeAllConnections?.();
      force?.();
    }, graceMs);
    server.close(() => {
      clearTimeout(timer);
      resolve(forced);
    });
    server.closeIdleConnections?.();
  });
}
