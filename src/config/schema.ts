import { arrayOf, boolean, duration, type Infer, integer, object, oneOf, optional, pattern, required, section, size, string, withDefault } from './spec.js';
import { bus } from './bus-schema.js';
import { listen, listenerIdentity, pgUrl, tableName } from './fields.js';
import { httpListener } from './http-schema.js';

// The listener and bus sections live in http-schema.ts and bus-schema.ts; this file joins them into the one file's schema.

const postgresRule = object({
  tables: required(arrayOf(tableName, { minItems: 1 })),
  ttl: optional(duration),
  cache: withDefault(boolean, true),
});

const postgresListener = object({
  ...listenerIdentity,
  upstream: required(pgUrl('postgres://127.0.0.1:5432')),
  defaultTtl: withDefault(duration, 60_000),
  /** Where sidecache asks the catalog (views, partitions, functions); defaults to `upstream`. */
  catalogUrl: optional(pgUrl('postgres://sidecache@127.0.0.1:5432')),
  /** User functions to treat as IMMUTABLE without asking the catalog. */
  functions: optional(arrayOf(pattern(/^[A-Za-z_][A-Za-z0-9_$.]*$/, 'a function name'))),
  connectTimeout: withDefault(duration, 5_000),
  /**
   * Client connections at most (each opens one upstream connection); beyond it a client gets
   * 53300 too_many_connections at once, as PostgreSQL answers. 0: no limit of sidecache's own.
   */
  maxClientConnections: withDefault(integer(0, 1_000_000), 0),
  /**
   * Time a client has from connecting to the end of its authentication (PgBouncer's
   * client_login_timeout, PostgreSQL's authentication_timeout); then the connection closes. 0: none.
   */
  loginTimeout: withDefault(duration, 10_000),
  /** PEM files: with them, clients' SSLRequest is answered S and sessions run over TLS. */
  tls: optional(object({ cert: required(string), key: required(string) })),
  rules: withDefault(arrayOf(postgresRule), []),
  /** Which misses fill the store: `always`, or `second-hit` (a key's second miss within a window of recent misses). */
  admission: withDefault(oneOf(['always', 'second-hit'] as const), 'always'),
});

/** The whole configuration file. Every section is optional; absent keys take these defaults. */
export const configSchema = object({
  cache: section(
    object({
      /** Hard ceiling for all entries: keys, tags, metadata and bodies. */
      maxBytes: withDefault(size, 256 * 1024 ** 2),
      /** Larger responses stream through and are not stored. */
      maxEntryBytes: withDefault(size, 8 * 1024 ** 2),
    }),
  ),
  admin: section(
    object({
      listen: withDefault(listen, '127.0.0.1:9090'),
      /** When set, POST and DELETE routes require `Authorization: Bearer <token>`. */
      token: withDefault(string, ''),
      /** Allows `listen` beyond loopback without a token (refused otherwise). */
      allowUnauthenticated: withDefault(boolean, false),
    }),
  ),
  readyz: section(
    object({
      /** `/readyz` answers 503 while a bus is down (by default it stays 200 and says so in its body). */
      requireBuses: withDefault(boolean, false),
    }),
  ),
  log: section(
    object({
      /** One JSON line per answered request on stdout (never bodies, query strings, SQL or bind values). */
      access: withDefault(boolean, false),
    }),
  ),
  http: withDefault(arrayOf(httpListener), []),
  postgres: withDefault(arrayOf(postgresListener), []),
  invalidation: withDefault(arrayOf(bus), []),
  /** How long a stop waits for work in flight before closing connections. */
  shutdownGrace: withDefault(duration, 10_000),
  /**
   * Listener processes sharing the ports (docs/workers.md): 1 is one process; with more, the process
   * started becomes a primary holding the admin and the buses, and each worker a store of `cache.maxBytes / workers`.
   */
  workers: withDefault(integer(1, 64), 1),
});

export type Config = Infer<typeof configSchema>;
export type CacheConfig = Config['cache'];
export type AdminConfig = Config['admin'];
export type HttpListenerConfig = Config['http'][number];
export type HttpRouteConfig = NonNullable<HttpListenerConfig['routes']>[number];
/** What one upstream of a listener runs with: the listener's keys, a route's in their place, and its upstream. */
export type HttpServiceConfig = Omit<HttpListenerConfig, 'upstream'> & { readonly upstream: string };
export type PostgresListenerConfig = Config['postgres'][number];
export type BusConfig = Config['invalidation'][number];
