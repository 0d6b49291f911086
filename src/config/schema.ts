import type { ConfigProblem } from '../errors.js';
import { redactUrl } from '../redact.js';
import { parsePgUrl, PgUrlError } from './pg-url.js';
import {
  arrayOf,
  boolean,
  byType,
  duration,
  integer,
  type Infer,
  object,
  oneOf,
  optional,
  pattern,
  refine,
  required,
  section,
  size,
  type Spec,
  string,
  withDefault,
} from './spec.js';
import { formatDuration, parseDuration } from './units.js';

/** `host:port`, `[v6]:port`, or `:port` (every interface). Port 0 asks the OS for a free one. */
export interface ListenAddress {
  host: string;
  port: number;
}

const LISTEN = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]*)):(\d{1,5})$/;

export function parseListen(text: string): ListenAddress | undefined {
  const match = LISTEN.exec(text);
  if (match === null) return undefined;
  const port = Number(match[3]);
  if (port > 65_535) return undefined;
  const host = match[1] ?? match[2] ?? '';
  return { host: host === '' ? '0.0.0.0' : host, port };
}

function url(protocols: readonly string[], example: string) {
  return refine(
    string,
    `a URL like "${example}"`,
    (v) => {
      try {
        return protocols.includes(new URL(v).protocol) ? undefined : `scheme must be ${protocols.join(' or ')}`;
      } catch {
        // new URL throws on anything unparsable; the message below says what was expected.
        return '';
      }
    },
    shownUrl,
  );
}

/** A PostgreSQL connection string as sidecache will read it (pg-connection-string), sslmode included. */
function pgUrl(example: string) {
  return refine(
    string,
    `a URL like "${example}"`,
    (v) => {
      try {
        parsePgUrl(v);
        return undefined;
      } catch (err) {
        if (err instanceof PgUrlError) return err.message;
        throw err;
      }
    },
    shownUrl,
  );
}

/** A refused URL in an error message: a password in it must not reach logs or terminals. */
function shownUrl(value: string): string {
  return JSON.stringify(redactUrl(value));
}

const listen = refine(string, 'an address like "127.0.0.1:8080"', (v) => (parseListen(v) ? undefined : ''));
const name = pattern(/^[A-Za-z0-9_.-]{1,64}$/, 'a name of letters, digits, "_", "." or "-"');
const tag = pattern(/^\S+$/, 'a tag without spaces');
const tableName = pattern(/^\S+$/, 'a table name');
const pathGlob = pattern(/^\//, 'a path glob starting with "/"');
const channel = pattern(/^[A-Za-z_][A-Za-z0-9_$]{0,62}$/, 'a channel name (letters, digits, "_")');

const httpRule = object({
  /** Path glob: `*` matches within a segment, `**` across segments. */
  path: required(pathGlob),
  /** Freshness for responses that are otherwise storable, overriding the upstream's. */
  ttl: optional(duration),
  /** Tags added to every entry of the route. */
  tags: optional(arrayOf(tag)),
  /** `cache: false` passes the route through untouched. */
  cache: withDefault(boolean, true),
  /** Store responses that set cookies (the stored copy has its `Set-Cookie` removed). */
  cacheSetCookie: withDefault(boolean, false),
  /** Ignore clients' `Cache-Control`/`Pragma`, so they cannot force a trip to the upstream; default: the listener's. */
  ignoreRequestCacheControl: optional(boolean),
});

const headerName = pattern(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'an HTTP header name');
/** `host[:port]`, a name or an IP (`[v6]`). */
const publicHost = pattern(
  /^(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/,
  'a host like "api.example.com" or "api.example.com:8080"',
);

/**
 * Request fields removed from every request before anything reads it: clients must not steer the
 * links or the method an origin answers with (the answer may be stored for everyone).
 */
export const DEFAULT_STRIP_REQUEST_HEADERS = [
  'X-Forwarded-Host',
  'X-Forwarded-Proto',
  'X-Forwarded-Port',
  'X-Forwarded-Prefix',
  'X-Forwarded-Server',
  'X-Forwarded-Scheme',
  'X-Forwarded-Ssl',
  'Front-End-Https',
  'X-Host',
  'Forwarded',
  'X-HTTP-Method-Override',
  'X-Method-Override',
  'X-Original-URL',
  'X-Rewrite-URL',
];

/**
 * HTTP cache-policy keys (RFC 9111/9213 behaviour), kept apart from the listener's forwarding keys.
 * `targetedCacheControl` names the targeted Cache-Control field (RFC 9213) meant for sidecache
 * alone: it takes precedence over `CDN-Cache-Control`, which takes precedence over `Cache-Control`,
 * and it is removed from responses to clients.
 */
const httpCachePolicyKeys = {
  targetedCacheControl: withDefault(headerName, 'Sidecache-Cache-Control'),
};

/** Keys every listener has, whatever its protocol. */
const listenerIdentity = { name: required(name), listen: required(listen) };

const httpUpstream = url(['http:', 'https:'], 'http://127.0.0.1:3000');
/** A route's `host`: a name (`api.example.com`, with a port if it must match one) or `*.example.com` (any name below it). */
const routeHost = pattern(
  /^(?:\*\.[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?)$/,
  'a host like "api.example.com", "api.example.com:8080" or "*.example.com"',
);

/**
 * One route of a gateway listener (`http[].routes[]`). Keys left out take the listener's value;
 * `rules` (client paths, as the listener's) replace the listener's when given.
 */
const httpRoute = object({
  /** Metrics label and identity of the route's entries; default: `host` + `path`. */
  name: optional(name),
  /** The request's authority: exact, or `*.example.com`; absent: any host. */
  host: optional(routeHost),
  /** A prefix (`/billing`: itself and below) or a glob (`/billing/**`) on the normal path; absent: any path. */
  path: optional(pathGlob),
  /** Base URL of the route's API; its path replaces the matched prefix of `path`. */
  upstream: required(httpUpstream),
  rules: optional(arrayOf(httpRule)),
  defaultTtl: optional(duration),
  staleWhileRevalidate: optional(duration),
  staleIfError: optional(duration),
  tagHeader: optional(headerName),
  exposeTags: optional(boolean),
  connections: optional(integer(1, 10_000)),
  connectTimeout: optional(duration),
  headersTimeout: optional(duration),
  bodyTimeout: optional(duration),
  maxQueued: optional(integer(0, 1_000_000)),
  forwardedHeaders: optional(oneOf(['append', 'replace', 'off'] as const)),
  ignoreRequestCacheControl: optional(boolean),
  ca: optional(string),
  targetedCacheControl: optional(headerName),
});

const httpListener = object({
  ...listenerIdentity,
  /** The one API behind the listener; exclusive with `routes`. */
  upstream: optional(httpUpstream),
  /** Several APIs behind one listener, chosen by host and path, first match wins; exclusive with `upstream`. */
  routes: optional(arrayOf(httpRoute, { minItems: 1 })),
  /** With `routes`: a request whose host no route names gets 421 Misdirected Request (404 otherwise). */
  knownHostsOnly: withDefault(boolean, false),
  defaultTtl: withDefault(duration, 0),
  staleWhileRevalidate: withDefault(duration, 0),
  staleIfError: withDefault(duration, 0),
  tagHeader: withDefault(headerName, 'Surrogate-Key'),
  /** Keep the tag header in responses to clients (it is removed by default). */
  exposeTags: withDefault(boolean, false),
  /** Keep-alive connections to the upstream at most. */
  connections: withDefault(integer(1, 10_000), 128),
  connectTimeout: withDefault(duration, 5_000),
  /** Time for the upstream to send the response headers. */
  headersTimeout: withDefault(duration, 30_000),
  /** Longest pause between two chunks of a response body. */
  bodyTimeout: withDefault(duration, 30_000),
  /**
   * Requests waiting for one of the `connections` at most; beyond, 503 with Retry-After at once.
   * The wait itself counts within `headersTimeout`. 0: no limit of sidecache's own.
   */
  maxQueued: withDefault(integer(0, 1_000_000), 1024),
  /** Client connections at most; beyond, Node closes new ones as they are accepted. 0: no limit of sidecache's own. */
  maxConnections: withDefault(integer(0, 1_000_000), 0),
  /** `append` to the client's X-Forwarded-For, `replace` it, or `off` (no Via or X-Forwarded-*). */
  forwardedHeaders: withDefault(oneOf(['append', 'replace', 'off'] as const), 'append'),
  /** Public `host[:port]` of the listener: sent upstream as X-Forwarded-Host, and accepted in absolute-form targets. */
  host: optional(publicHost),
  /** Request fields removed before the request is routed, keyed or forwarded. */
  stripRequestHeaders: withDefault(arrayOf(headerName), DEFAULT_STRIP_REQUEST_HEADERS),
  /** Ignore clients' `Cache-Control`/`Pragma` (rules may override): they neither bypass nor replace shared entries. */
  ignoreRequestCacheControl: withDefault(boolean, true),
  /** `Upgrade` protocols tunnelled after the upstream's `101`; other Upgrade requests are handled as plain requests. */
  upgradeProtocols: withDefault(arrayOf(pattern(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'a protocol name like "websocket"')), ['websocket']),
  /** PEM file of a CA to trust for an `https://` upstream, in addition to the system's. */
  ca: optional(string),
  rules: withDefault(arrayOf(httpRule), []),
  ...httpCachePolicyKeys,
});

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

/** `flush` (drop every entry when a bus comes back after an outage) or `keep` (accept the risk). */
const onGap = withDefault(oneOf(['flush', 'keep'] as const), 'flush');

/**
 * `bypass` (serve nothing from the cache, fill nothing) or `ttl:<duration>` (serve entries stored
 * less than that long ago), while the bus is down; read as the longest age an entry may have
 * (0 for `bypass`).
 */
const whileDown: Spec<{ maxAgeMs: number }> = {
  expected: 'bypass or ttl:<duration> like "ttl:30s"',
  format: (value) => (value.maxAgeMs === 0 ? 'bypass' : `ttl:${formatDuration(value.maxAgeMs)}`),
  check(value, path, problems) {
    if (value === 'bypass') return { maxAgeMs: 0 };
    const ms = typeof value === 'string' && value.startsWith('ttl:') ? parseDuration(value.slice(4)) : undefined;
    if (ms?.ok === true && ms.value > 0) return { maxAgeMs: ms.value };
    problems.push({ path, message: `expected bypass or ttl:<duration> like "ttl:30s" (more than 0), got ${JSON.stringify(value)}` });
    return undefined;
  },
};

/** What every bus type has: what a gap does, how often it proves it is alive, how large a message may be. */
const busCommon = {
  onGap,
  /** How entries are served while the bus is down (messages may be lost meanwhile). */
  whileDown: withDefault(whileDown, { maxAgeMs: 0 }),
  /** Publish this replica's own invalidations on the bus, for the other replicas. */
  publish: withDefault(boolean, true),
  /** How often the bus proves it still hears the server; an answer missing by the next beat is a lost connection. */
  heartbeat: withDefault(
    refine(duration, 'a duration from 10ms to 1h like "5s"', (ms) => (ms >= 10 && ms <= 3_600_000 ? undefined : '')),
    5_000,
  ),
  /** A larger message is refused (counted, logged) before it is decoded. */
  maxMessageBytes: withDefault(
    refine(size, 'a size from 1KiB to 256MiB like "1MiB"', (bytes) => (bytes >= 1024 && bytes <= 256 * 1024 ** 2 ? undefined : '')),
    1024 ** 2,
  ),
};

const bus = byType({
  postgres: object({
    url: required(pgUrl('postgres://127.0.0.1:5432/app')),
    channel: withDefault(channel, 'sidecache'),
    ...busCommon,
  }),
  redis: object({
    url: required(url(['redis:', 'rediss:'], 'redis://127.0.0.1:6379')),
    channel: withDefault(pattern(/^\S+$/, 'a channel name without spaces'), 'sidecache'),
    /** The URL names a seed node of a Redis Cluster. */
    cluster: withDefault(boolean, false),
    ...busCommon,
  }),
  'redis-stream': object({
    url: required(url(['redis:', 'rediss:'], 'redis://127.0.0.1:6379')),
    /** The stream's key: read with XREAD from the last entry applied, written with XADD. */
    stream: withDefault(pattern(/^\S+$/, 'a key name without spaces'), 'sidecache'),
    /** Entries sidecache's own XADDs keep in the stream (`MAXLEN ~`, https://redis.io/docs/latest/commands/xadd/); 0: no trimming. */
    maxLen: withDefault(integer(0, 1_000_000_000), 10_000),
    ...busCommon,
  }),
  'postgres-wal': object({
    url: required(pgUrl('postgres://sidecache@127.0.0.1:5432/app')),
    /** The publication read (pgoutput). */
    publication: withDefault(pattern(/^[a-z_][a-z0-9_$]{0,62}$/, 'a publication name (lower-case letters, digits, "_")'), 'sidecache'),
    /** Create the publication when it is missing (refused while a table it would cover has no replica identity). */
    createPublication: withDefault(boolean, false),
    /** Tables of the publication `createPublication` creates (and their partitions); empty: FOR ALL TABLES. */
    tables: withDefault(arrayOf(tableName), []),
    /** A replication slot kept across reconnects and restarts (resumed without a flush); absent: a temporary slot per connection. */
    slot: optional(pattern(/^[a-z0-9_]{1,63}$/, 'a slot name (lower-case letters, digits, "_")')),
    /** WAL a named slot may hold back before sidecache warns (sidecache_wal_slot_lag_bytes). */
    maxSlotLag: withDefault(size, 1024 ** 3),
    ...busCommon,
  }),
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

/** Rules that span keys: they run once every key on its own is valid. */
/** 127.0.0.0/8, ::1 and localhost: reachable from this host only. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

export function crossCheck(config: Config): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if (config.cache.maxEntryBytes > config.cache.maxBytes) {
    problems.push({ path: 'cache.maxEntryBytes', message: 'expected at most cache.maxBytes' });
  }
  const { admin } = config;
  if (admin.token === '' && !admin.allowUnauthenticated && !isLoopback(parseListen(admin.listen)?.host ?? '')) {
    problems.push({
      path: 'admin.token',
      message: `expected a token: admin.listen ${admin.listen} is reachable from other hosts, and without a token anyone there may invalidate, reload and explain; set admin.token (e.g. \${file:/run/secrets/sidecache-admin-token}), listen on 127.0.0.1, or set admin.allowUnauthenticated: true`,
    });
  }
  const names = new Map<string, string>();
  const addresses = new Map<string, string>([[admin.listen, 'admin.listen']]);
  const listeners = [...config.http.map((l, i) => ({ l, at: `http[${i}]` })), ...config.postgres.map((l, i) => ({ l, at: `postgres[${i}]` }))];
  for (const { l, at } of listeners) {
    const seen = names.get(l.name);
    if (seen !== undefined) problems.push({ path: `${at}.name`, message: `expected a unique name, "${l.name}" is also ${seen}.name` });
    names.set(l.name, at);
    const taken = addresses.get(l.listen);
    if (taken !== undefined && parseListen(l.listen)?.port !== 0) {
      problems.push({ path: `${at}.listen`, message: `expected a free address, ${l.listen} is also ${taken}` });
    }
    addresses.set(l.listen, `${at}.listen`);
  }
  config.http.forEach((l, i) => problems.push(...checkRoutes(l, `http[${i}]`)));
  return problems;
}

/** `upstream` and `routes` are exclusive, one is needed; route names are unique within the listener. */
function checkRoutes(listener: HttpListenerConfig, at: string): ConfigProblem[] {
  const { upstream, routes } = listener;
  if (upstream !== undefined && routes !== undefined) {
    return [{ path: `${at}.routes`, message: 'expected either upstream (one API) or routes (several), not both' }];
  }
  if (routes === undefined) {
    const problems =
      upstream === undefined ? [{ path: `${at}.upstream`, message: 'is required (or routes): expected a URL like "http://127.0.0.1:3000"' }] : [];
    if (listener.knownHostsOnly) problems.push({ path: `${at}.knownHostsOnly`, message: 'expected routes: knownHostsOnly applies to the hosts routes name' });
    return problems;
  }
  const problems: ConfigProblem[] = [];
  const names = new Map<string, number>();
  routes.forEach((route, i) => {
    if (route.name === undefined) return;
    const seen = names.get(route.name);
    if (seen !== undefined)
      problems.push({ path: `${at}.routes[${i}].name`, message: `expected a unique name, "${route.name}" is also ${at}.routes[${seen}].name` });
    names.set(route.name, i);
  });
  return problems;
}
