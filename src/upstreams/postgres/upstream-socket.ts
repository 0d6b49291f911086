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
  /** PEM of `sslrootcert`, for verify-ca / verify-full (and require, which then checks like verify-ca). */
  ca: string | undefined;
  /** PEMs of `sslcert` / `sslkey`: the certificate shown when the server asks for one (mutual TLS). */
  clientCert?: { cert: string; key: string } | undefined;
  connectTimeoutMs: number;
}

/** Host, port and TLS settings of the upstream's URL; libpq's defaults fill the gaps. */
export function upstreamTarget({ host, port, sslmode, ca, clientCert }: PgUrl, connectTimeoutMs: number): UpstreamTarget {
  return { host: host ?? '127.0.0.1', port: port ?? 5432, sslmode: sslmode ?? 'prefer', ca, clientCert, connectTimeoutMs };
}

/**
 * Whether the server's certificate must chain to `sslrootcert`: verify-ca and verify-full, and
 * require when a root certificate is given ("if a root CA file exists, the behavior of
 * sslmode=require will be the same as that of verify-ca").
 */
function verifiesChain({ sslmode, ca }: UpstreamTarget): boolean {
  return sslmode === 'verify-ca' || sslmode === 'verify-full' || (sslmode === 'require' && ca !== undefined);
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
  const secure = tls.connect({
    socket,
    servername: net.isIP(target.host) ? undefined : target.host,
    rejectUnauthorized: verifiesChain(target),
    ...(target.ca !== undefined && { ca: target.ca }),
    ...(target.clientCert !== undefined && target.clientCert),
    // The URL's host, always: with a socket given and no servername (an IP), node would check the name "localhost".
    checkServerIdentity: target.sslmode === 'verify-full' ? (_name, cert) => tls.checkServerIdentity(target.host, cert) : () => undefined,
  });
  await new Promise<void>((resolve, reject) => {
    secure.once('secureConnect', resolve);
    secure.once('error', (err) => reject(tlsFailure(target, secure, err)));
  });
  secure.setNoDelay(true);
  return secure;
}

/** A failed TLS handshake in words an operator can act on: an untrusted certificate, a wrong name, or else the TLS error. */
function tlsFailure(target: UpstreamTarget, secure: tls.TLSSocket, err: NodeJS.ErrnoException): Error {
  const mode = target.sslmode === 'require' ? 'sslmode=require with sslrootcert' : `sslmode=${target.sslmode}`;
  if (err.code === 'ERR_TLS_CERT_ALTNAME_INVALID')
    return new SidecacheError('SC_ERR_UPSTREAM_CONNECT', `the server's certificate does not name ${target.host} (${mode}): ${err.message}`, { cause: err });
  if (secure.authorizationError !== undefined && secure.authorizationError !== null)
    return new SidecacheError('SC_ERR_UPSTREAM_CONNECT', `the server's certificate is not trusted (${mode}): ${err.message}`, { cause: err });
  return new SidecacheError('SC_ERR_UPSTREAM_CONNECT', `TLS with the server failed (sslmode=${target.sslmode}): ${err.message}`, { cause: err });
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
