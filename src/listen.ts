import { readdirSync, readFileSync } from 'node:fs';
import type http from 'node:http';
import type { Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { parseListen } from './config/fields.js';

export { isLoopback } from './config/fields.js';
import { SidecacheError } from './errors.js';

/**
 * Binds `server` to a configured `host:port`; a failure names the address and the reason. Once
 * bound, errors the server reports (an `accept` that failed: EMFILE, ENFILE) go to `onError`:
 * unheard, one would end the process.
 */
export function listen(server: Server, address: string, what: string, onError: (err: NodeJS.ErrnoException) => void = () => undefined): Promise<AddressInfo> {
  const parsed = parseListen(address);
  if (parsed === undefined) return Promise.reject(new SidecacheError('SC_ERR_LISTEN', `${what}: cannot parse address ${address}`));
  return new Promise((resolve, reject) => {
    const onBindError = (err: NodeJS.ErrnoException): void => {
      reject(new SidecacheError('SC_ERR_LISTEN', `${what} cannot listen on ${address}: ${err.code ?? err.message}`, { cause: err }));
    };
    server.once('error', onBindError);
    server.listen(parsed.port, parsed.host, () => {
      server.off('error', onBindError);
      server.on('error', onError);
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

/** Resolves when `work` settles or `ms` have passed, whichever comes first: a stop step that cannot outlast the grace. */
export function settleWithin(work: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, Math.max(0, ms));
    work.then(
      () => {
        clearTimeout(timer);
        resolve();
      },
      () => {
        clearTimeout(timer);
        resolve();
      },
    );
  });
}

/**
 * Notices when the process runs out of file descriptors. libuv hides it: when `accept` fails with
 * EMFILE it closes a descriptor it keeps in reserve, accepts and closes every pending connection,
 * and reports nothing (uv__emfile_trick), so every port, admin included, accepts and drops
 * connections silently. The watch looks every `intervalMs` (Linux: /proc/self/fd against the soft
 * RLIMIT_NOFILE) and calls `onChange` when the process runs out and when it has some again.
 */
export class DescriptorWatch {
  readonly #intervalMs: number;
  readonly #onChange: (exhausted: boolean, limit: number) => void;
  #timer: NodeJS.Timeout | undefined;
  #exhausted = false;

  constructor(intervalMs: number, onChange: (exhausted: boolean, limit: number) => void) {
    this.#intervalMs = intervalMs;
    this.#onChange = onChange;
  }

  start(): void {
    const limit = descriptorLimit();
    if (limit === undefined || this.#timer !== undefined) return;
    this.#timer = setInterval(() => {
      const exhausted = descriptorsExhausted(limit);
      if (exhausted === this.#exhausted) return;
      this.#exhausted = exhausted;
      this.#onChange(exhausted, limit);
    }, this.#intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

/** The soft limit on open files (Linux; undefined elsewhere, or when unlimited). */
function descriptorLimit(): number | undefined {
  let text: string;
  try {
    text = readFileSync('/proc/self/limits', 'latin1');
  } catch {
    // Not Linux (or /proc not mounted): there is nothing to watch with.
    return undefined;
  }
  const match = /^Max open files\s+(\d+)/m.exec(text);
  return match === null ? undefined : Number(match[1]);
}

/** Whether no descriptor is free: listing /proc/self/fd needs one, and it lists itself. */
function descriptorsExhausted(limit: number): boolean {
  try {
    return readdirSync('/proc/self/fd').length >= limit;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'EMFILE' || code === 'ENFILE';
  }
}
