/** The `http[]` section: a listener, its gateway routes and its rules. */
import { arrayOf, boolean, duration, integer, object, oneOf, optional, pattern, required, string, withDefault } from './spec.js';
import { headerName, listenerIdentity, name, pathGlob, tag, url } from './fields.js';

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
export const httpListener = object({
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
