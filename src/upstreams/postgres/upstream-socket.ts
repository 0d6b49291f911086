/** Opens the socket to the upstream server, TCP then TLS as sslmode says (https://www.postgresql.org/docs/current/libpq-ssl.html). */
import net from 'node:net';
import tls from 'node:tls';
import type { PgUrl, SslMode } from '../../config/pg-url.js';
import { SidecacheError } from '../../errors.js';
import { SSL_REQUEST } from './messages.js';

export interface UpstreamTarget {
  host: string;
  port: number;
  sslmode: SslMode;
  /** PEM of `sslrootcert`, for verify-ca / verify-full. */
  ca: string | undefined;
  connectTimeoutMs: number;
}

/** Host, port and TLS settings of the upstream's URL; libpq's defaults fill the gaps. */
export function upstreamTarget({ host, port, sslmode, ca }: PgUrl, connectTimeoutMs: number): UpstreamTarget {
  return { host: host ?? '127.0.0.1', port: port ?? 5432, sslmode: sslmode ?? 'prefer', ca, connectTimeoutMs };
}

/**
 * Opens a connection to the upstream server, negotiating TLS per sslmode: `prefer`/`allow` use
 * TLS when the server offers it, `require` insists, `verify-ca` / `verify-full` also check the
 * certificate (and, for verify-full, the host name). TCP_NODELAY is set: drivers make many small
 * round trips (docs/architecture.md "Postgres session facts").
 */
export async function connectUpstream(target: UpstreamTarget): Promise<net.Socket | tls.TLSSocket> {
  const socket = await openTcp(target);
  if (target.sslmode === 'disable') return socket;
  socket.write(SSL_REQUEST);
  const answer = await readOneByte(socket);
  if (answer !== 'S') {
    if (target.sslmode === 'prefer' || target.sslmode === 'allow') return socket;
    socket.destroy();
    throw new SidecacheError('SC_ERR_UPSTREAM_CONNECT', `the server does not offer TLS (sslmode=${target.sslmode})`);
  }
  const verify = target.sslmode === 'verify-ca' || target.sslmode === 'verify-full';
  const secure = tls.connect({
    socket,
    servername: net.isIP(target.host) ? undefined : target.host,
    rejectUnauthorized: verify,
    ...(target.ca !== undefined && { ca: target.ca }),
    ...(target.sslmode !== 'verify-full' && { checkServerIdentity: () => undefined }),
  });
  await new Promise<void>((resolve, reject) => {
    secure.once('secureConnect', resolve);
    secure.once('error', reject);
  });
  secure.setNoDelay(true);
  return secure;
}

function openTcp(target: UpstreamTarget): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: target.host, port: target.port, noDelay: true });
    const timer = setTimeout(() => {
      socket.destroy(new SidecacheError('SC_ERR_UPSTREAM_TIMEOUT', `no connection within ${target.connectTimeoutMs}ms`));
    }, target.connectTimeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      resolve(socket);
    });
    const onError = (err: Error): void => {
      clearTimeout(timer);
      reject(err);
    };
    socket.once('error', onError);
  });
}

function readOneByte(socket: net.Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    const onReadable = (): void => {
      const byte = socket.read(1) as Buffer | null;
      if (byte === null) return;
      cleanup();
      resolve(byte.toString('latin1'));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    const onEnd = (): void => onError(new SidecacheError('SC_ERR_UPSTREAM_CONNECT', 'the server closed the connection during TLS negotiation'));
    const cleanup = (): void => {
      socket.off('readable', onReadable);
      socket.off('error', onError);
      socket.off('end', onEnd);
    };
    socket.on('readable', onReadable);
    socket.once('error', onError);
    socket.once('end', onEnd);
  });
}
