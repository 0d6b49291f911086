/**
 * The upstreams of one HTTP listener and how a request finds its own. A listener with one
 * `upstream` has one service (its implicit route, keyed by the listener's name as ever); a
 * gateway (`http[].routes`) has one per route, each with its own pool, rules, TTLs and key
 * namespace, so two upstreams never share an entry.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { LRUCache } from 'lru-cache';
import { routeTag } from '../../cache/tags.js';
import type { HttpListenerConfig, HttpRouteConfig, HttpServiceConfig } from '../../config/schema.js';
import type { Reporter } from '../report.js';
import type { ListenerContext } from './context.js';
import { Upstream } from './forward.js';
import type { ListenerDefaults } from './policy.js';
import type { ReadThroughContext } from './read-through.js';
import { compileRoutePath, RouteMatcher } from './route-match.js';
import { RouteTable } from './rules.js';
import { hostOf } from './target.js';

/** One upstream of a listener, with what requests for it run with. */
export interface Service {
  readonly ctx: ReadThroughContext;
  /** The path rules (`rules[]`), replaced on reload. */
  rules: RouteTable;
}

/** Why a request reaches no upstream: no route matched (404), or its host is not one routes name and the listener wants known hosts only (421). */
export type NoRoute = 'no-route' | 'unknown-host';

/** What every service of a listener shares: the store, clock, side memory and hooks. */
export type ServiceTemplate = Omit<ReadThroughContext, 'name' | 'route' | 'config' | 'upstream' | 'defaults' | 'tagHeader' | 'report'> & {
  /** The request reporter of one route (undefined: the listener's one upstream). */
  reporter(route: string | undefined): Reporter;
  /** Hears the status of every response an upstream sent (`sidecache_upstream_responses_total`). */
  upstreamResponded(status: number): void;
};

/** Route keys built into the upstream's pool: a change means a new pool (the old one finishes its requests). */
const POOL_KEYS = ['upstream', 'connections', 'connectTimeout', 'headersTimeout', 'bodyTimeout', 'ca', 'forwardedHeaders', 'host'] as const;

/** Route keys that, when set, take the place of the listener's. */
const INHERITED_KEYS = [
  'rules',
  'defaultTtl',
  'staleWhileRevalidate',
  'staleIfError',
  'tagHeader',
  'exposeTags',
  'connections',
  'connectTimeout',
  'headersTimeout',
  'bodyTimeout',
  'maxQueued',
  'forwardedHeaders',
  'ignoreRequestCacheControl',
  'ca',
  'targetedCacheControl',
] as const satisfies readonly (keyof HttpRouteConfig & keyof HttpServiceConfig)[];

/** A route's name: its own, else its host and path (`api.example.com/billing/**`; never a valid `name`, so never another route's). */
export function routeName(route: Pick<HttpRouteConfig, 'name' | 'host' | 'path'>): string {
  return route.name ?? `${route.host ?? '*'}${route.path ?? '/**'}`;
}

/** The listener's keys with the route's in their place. */
export function serviceConfig(listener: HttpListenerConfig, route: HttpRouteConfig): HttpServiceConfig {
  const merged: Record<string, unknown> = { ...listener, upstream: route.upstream };
  for (const key of INHERITED_KEYS) if (route[key] !== undefined) merged[key] = route[key];
  delete merged.routes;
  return merged as HttpServiceConfig;
}

/**
 * The namespace of a route's keys and URL tags: the listener, the route's name, and a digest of
 * what decides which upstream resource a client path names (its `path` and `upstream`). A reload
 * that changes either starts an empty namespace, and drops the old one's entries.
 */
function namespaceOf(listener: string, route: HttpRouteConfig): string {
  const digest = createHash('sha256')
    .update(JSON.stringify([route.path ?? null, route.upstream]))
    .digest('base64url')
    .slice(0, 12);
  return `${listener}\u0000${routeName(route)}\u0000${digest}`;
}

/**
 * The host a gateway routes a request by (RFC 9112 §3.2): the authority of an absolute-form target
 * (its `Host` field is then ignored, and replaced, RFC 9112 §3.2.2), else the `Host` field; as
 * `hostOf` spells it. Undefined when the request names none (HTTP/1.0); null when it is malformed
 * or sent more than once (RFC 9112 §3.2: answered 400).
 */
export function requestHost(req: IncomingMessage): string | undefined | null {
  let lines = 0;
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!;
    if (name.length === 4 && name.toLowerCase() === 'host') lines++;
  }
  if (lines > 1) return null;
  const url = req.url ?? '';
  const absolute = url.charCodeAt(0) === 0x2f ? null : /^http:\/\/([^/?#]*)/i.exec(url);
  const authority = absolute?.[1] ?? req.headers.host;
  if (authority === undefined) return undefined;
  const host = hostOfCached(authority);
  if (host === undefined) return null;
  if (absolute !== null) req.headers.host = authority;
  return host;
}

/**
 * `hostOf` (a WHATWG URL parse, the dearest step of routing) remembered per authority as clients
 * send it: a gateway sees few names. Bounded, so a client sending a new Host each time costs only
 * evictions.
 */
const hosts = new LRUCache<string, { host: string | undefined }>({ max: 1024 });

function hostOfCached(authority: string): string | undefined {
  let known = hosts.get(authority);
  if (known === undefined) {
    known = { host: hostOf(authority) };
    hosts.set(authority, known);
  }
  return known.host;
}

/** The services of one listener: the one upstream, or the routes of a gateway. */
export class Services {
  readonly #name: string;
  readonly #template: ServiceTemplate;
  #single: Service | undefined;
  #matcher: RouteMatcher<Service> | undefined;
  #knownHostsOnly = false;
  /** Each route's service by key namespace, with the route it was built from. */
  #routes = new Map<string, { service: Service; route: HttpRouteConfig; config: HttpServiceConfig }>();

  constructor(config: HttpListenerConfig, template: ServiceTemplate) {
    this.#name = config.name;
    this.#template = template;
    if (config.routes === undefined) this.#single = this.#build(config as HttpServiceConfig, config.name, undefined, '');
    else this.update(config);
  }

  /** Whether the listener routes by host and path (`routes`). */
  get gateway(): boolean {
    return this.#single === undefined;
  }

  /** The service for a request to `host` (see `requestHost`) and `path` (normal form, no query). */
  find(host: string | undefined, path: string): Service | NoRoute {
    if (this.#single !== undefined) return this.#single;
    const matcher = this.#matcher!;
    if (this.#knownHostsOnly && !matcher.knows(host)) return 'unknown-host';
    return matcher.match(host, path) ?? 'no-route';
  }

  /**
   * Applies a listener entry: settings that need no new pool change in place; a gateway's routes
   * are added, rebuilt (a new pool when a pool key changed) or removed. Returns the tags of the
   * entries that must go: those of routes whose namespace is gone.
   */
  update(config: HttpListenerConfig): string[] {
    if (this.#single !== undefined) {
      applySettings(this.#single, config as HttpServiceConfig);
      return [];
    }
    this.#knownHostsOnly = config.knownHostsOnly;
    const next = new Map<string, { service: Service; route: HttpRouteConfig; config: HttpServiceConfig }>();
    const routes = (config.routes ?? []).map((route) => {
      const namespace = namespaceOf(this.#name, route);
      const service = next.get(namespace)?.service ?? this.#serviceFor(namespace, config, route);
      next.set(namespace, { service, route, config: serviceConfig(config, route) });
      return { host: route.host, path: route.path, value: service };
    });
    const gone: string[] = [];
    for (const [namespace, { service }] of this.#routes) {
      const kept = next.get(namespace)?.service;
      if (kept !== service) void service.ctx.upstream.close();
      if (kept === undefined) gone.push(routeTag(namespace));
    }
    this.#routes = next;
    this.#matcher = new RouteMatcher(routes);
    return gone;
  }

  /** The running service of `namespace` when its pool can stay, else a new one (whose entries stay when the namespace does). */
  #serviceFor(namespace: string, listener: HttpListenerConfig, route: HttpRouteConfig): Service {
    const config = serviceConfig(listener, route);
    const running = this.#routes.get(namespace);
    if (running !== undefined && POOL_KEYS.every((key) => running.config[key] === config[key])) {
      applySettings(running.service, config);
      return running.service;
    }
    return this.#build(config, namespace, routeName(route), stripOf(route));
  }

  #build(config: HttpServiceConfig, namespace: string, route: string | undefined, strip: string): Service {
    const t = this.#template;
    const ctx: ReadThroughContext = {
      ...t,
      name: namespace,
      route,
      config,
      upstream: new Upstream(config, t.upstreamFailed, strip, (status) => t.upstreamResponded(status)),
      defaults: defaultsOf(config),
      tagHeader: config.tagHeader.toLowerCase(),
      report: t.reporter(route),
    };
    const tags = route === undefined ? [] : [routeTag(namespace)];
    return { ctx, rules: new RouteTable(config.rules, config, tags) };
  }

  /** Every upstream pool (for the queue gauge, logs and stop). */
  get upstreams(): Upstream[] {
    return this.#single !== undefined ? [this.#single.ctx.upstream] : [...this.#routes.values()].map((r) => r.service.ctx.upstream);
  }
}

/**
 * The client prefix the upstream URL's path replaces (`path: /billing/**` with
 * `http://billing:8080/v2`: `/billing/x` → `/v2/x`), as nginx's `proxy_pass` with a URI; an
 * upstream URL without a path keeps the client's path as it is.
 */
function stripOf(route: HttpRouteConfig): string {
  return new URL(route.upstream).pathname.replace(/\/$/, '') === '' ? '' : compileRoutePath(route.path).strip;
}

/** Settings a running service takes without a new pool. */
function applySettings(service: Service, config: HttpServiceConfig): void {
  const ctx: ListenerContext = service.ctx;
  const tags = ctx.route === undefined ? [] : [routeTag(ctx.name)];
  service.rules = new RouteTable(config.rules, config, tags);
  ctx.config = config;
  ctx.defaults = defaultsOf(config);
  ctx.tagHeader = config.tagHeader.toLowerCase();
  ctx.upstream.maxQueued = config.maxQueued;
}

function defaultsOf(config: HttpServiceConfig): ListenerDefaults {
  return { defaultTtlMs: config.defaultTtl, staleWhileRevalidateMs: config.staleWhileRevalidate, staleIfErrorMs: config.staleIfError };
}
