/**
 * PostgreSQL connection strings (`postgres://user:password@host:port/database?sslmode=…`), read
 * with pg-connection-string, node-postgres' own parser, both where the configuration is checked
 * and where sockets are built from it: one reading, so a URL that loads is the URL that connects.
 * (https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING-URIS)
 */
import tls from 'node:tls';
import { type ConnectionOptions, parse } from 'pg-connection-string';
import { SidecacheError } from '../errors.js';

/** libpq's sslmode values (https://www.postgresql.org/docs/current/libpq-ssl.html). */
export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof SSL_MODES)[number];

/** What sidecache reads from a connection string; absent parts are undefined. */
export interface PgUrl {
  /** Host name or address, IPv6 without brackets. */
  host: string | undefined;
  port: number | undefined;
  user: string | undefined;
  password: string | undefined;
  database: string | undefined;
  sslmode: SslMode | undefined;
  /** PEM read from the file `sslrootcert` names. */
  ca: string | undefined;
  /** PEMs read from the files `sslcert` and `sslkey` name: the client certificate shown to the server, both or neither. */
  clientCert: { cert: string; key: string } | undefined;
}

/** A connection string that cannot be used, and why (the message never repeats the URL: it may hold a password). */
export class PgUrlError extends SidecacheError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SC_ERR_CONFIG_INVALID', message, options);
    this.name = 'PgUrlError';
  }
}

const SCHEME = /^postgres(?:ql)?:\/\//i;

/**
 * libpq's reading of sslmode, which sidecache's upstream socket follows; node-postgres' default
 * reading would also warn, once per process, that prefer/require/verify-ca mean verify-full, which
 * is not true of sidecache. pg-connection-string's libpq reading refuses verify-ca without
 * sslrootcert with a message of its own: such a URL is read again the way node-postgres reads it,
 * and `parsePgUrl` refuses it in sidecache's words.
 */
function readOptions(text: string): ConnectionOptions {
  try {
    return parse(text, { useLibpqCompat: true });
  } catch (err) {
    // A bad URL (TypeError) or an unreadable file (an errno code) is the same either way.
    if (err instanceof TypeError || (err as NodeJS.ErrnoException).code !== undefined) throw err;
    return parse(text);
  }
}

function isSslMode(value: string): value is SslMode {
  return (SSL_MODES as readonly string[]).includes(value);
}

/**
 * Reads a `postgres://` or `postgresql://` URL. Throws PgUrlError for another scheme, a URL
 * pg-connection-string cannot parse, a port that is not a number, an sslmode libpq does not know,
 * or a certificate file (`sslrootcert`, `sslcert`, `sslkey`) that cannot be read: the parser reads
 * those files itself.
 */
export function parsePgUrl(text: string): PgUrl {
  if (!SCHEME.test(text)) throw new PgUrlError('scheme must be postgres: or postgresql:');
  let options: ConnectionOptions;
  try {
    options = readOptions(text);
  } catch (err) {
    const { code, path } = err as NodeJS.ErrnoException;
    if (path !== undefined) throw new PgUrlError(`cannot read ${path}: ${code ?? (err as Error).message}`, { cause: err });
    throw new PgUrlError(err instanceof TypeError ? 'not a URL' : (err as Error).message, { cause: err });
  }
  const port = options.port ? Number(options.port) : undefined;
  if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port <= 65_535))
    throw new PgUrlError(`port must be a number from 0 to 65535, got "${options.port}"`);
  const sslmode = options.sslmode;
  if (sslmode !== undefined && !(typeof sslmode === 'string' && isSslMode(sslmode)))
    throw new PgUrlError(`sslmode must be one of ${SSL_MODES.join(', ')}, got "${String(sslmode)}"`);
  const ssl = typeof options.ssl === 'object' ? options.ssl : undefined;
  // libpq looks for ~/.postgresql/root.crt and will not connect without it; sidecache has no such default file.
  if (sslmode === 'verify-ca' && ssl?.ca === undefined)
    throw new PgUrlError("sslmode=verify-ca needs sslrootcert, the CA certificate to check the server's against (as libpq does); or use verify-full");
  return {
    host: options.host || undefined,
    port,
    user: options.user || undefined,
    password: options.password || undefined,
    database: options.database || undefined,
    sslmode,
    ca: ssl?.ca,
    clientCert: clientCert(ssl?.cert, ssl?.key),
  };
}

/** The client certificate and its key, checked as a pair now rather than at the first connection. */
function clientCert(cert: unknown, key: unknown): PgUrl['clientCert'] {
  if (cert === undefined && key === undefined) return undefined;
  if (typeof cert !== 'string') throw new PgUrlError('sslkey needs sslcert, the client certificate it is the key of');
  if (typeof key !== 'string') throw new PgUrlError('sslcert needs sslkey, the key of the client certificate');
  try {
    tls.createSecureContext({ cert, key });
  } catch (err) {
    throw new PgUrlError(`sslcert and sslkey cannot be used: ${(err as Error).message}`, { cause: err });
  }
  return { cert, key };
}
