/**
 * One `http[]` listener: a node:http server that puts each request in its normal form (target and
 * fields) and routes it to the read-through path, a forwarded method, a pass-through, an Upgrade
 * or PURGE.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Store } from '../../cache/store.js';
import type { Clock } from '../../clock.js';
import type { Millis } from '../../units.js';
import type { HttpListenerConfig } from '../../config/schema.js';
import { closeGracefully, formatAddress, httpUrlOf, listen, settleWithin } from '../../listen.js';
import type { Logger } from '../../log.js';
import type { Invalidate } from '../local-invalidation.js';
import { type AccessLog, statusClass } from '../access.js';
import { httpReporter } from './access-report.js';
import { explainOnServices, type HttpExplanation } from './explain.js';
import { forwardAsterisk, isAsteriskOptions } from './asterisk.js';
import { errorText, upstreamErrorReason, type UpstreamErrorReason } from './gateway-error.js';
import { stripRequestFields } from './headers.js';
import { clockedPolicy } from './policy.js';
import { readThrough } from './read-through.js';
import { readThroughRange } from './read-through-range.js';
import { badHost, badTarget, clientError, noRoute, noRouteHead } from './no-route.js';
import { purge } from './purge.js';
import { requestHost, Services } from './routes.js';
import { SideMemory } from './side-memory.js';
import { hostOf, normalizeTarget, originForm } from './target.js';
import { forwardMethod } from './unsafe.js';
import { forwardUpgrade, isAllowedUpgrade, reparseWithoutUpgrade } from './upgrade.js';

export interface HttpListenerDeps {
  config: HttpListenerConfig;
  store: Store;
  clock: Clock;
  log: Logger;
  /** The admin token; PURGE requires it as Bearer when set (loopback clients otherwise). */
  adminToken: string;
  /** The one invalidation path (docs/architecture.md "Bus invalidation"), published to the other replicas; `source` names the listener in metrics. */
  invalidate: Invalidate;
  /** Hears of every upstream request that got no response, by reason (for the metric). */
  onUpstreamError?(reason: UpstreamErrorReason): void;
  /** Hears of every client connection closed on arrival (past `maxConnections`). */
  onRefused?(reason: 'limit'): void;
  /** Hears that the server could not accept a connection (EMFILE, ENFILE, …). */
  onAcceptError?(err: NodeJS.ErrnoException): void;
  /** Hears the status class (`2xx`…) of every response the upstream sent (for the metric). */
  onUpstreamResponse?(statusClass: string): void;
  /** Writes one line per answered request (`log.access`); absent: no access log. */
  accessLog?: AccessLog;
}

/** One warning per reason at most this often (the rest are counted, and said in the next one). */
const WARN_INTERVAL_MS = 10_000;

/** One `http[]` entry: a node:http server in front of one upstream, caching as a shared cache. */
export class HttpListener {
  readonly name: string;
  #config: HttpListenerConfig;
  readonly #server: http.Server;
  /** The one upstream, or a gateway's routes (`routes.ts`). */
  readonly #services: Services;
  /** Request fields removed on arrival (`stripRequestHeaders`), lower case. */
  #strip: ReadonlySet<string>;
  /** Protocols an Upgrade may switch to (`upgradeProtocols`), lower case. */
  #upgradeProtocols: ReadonlySet<string>;
  /** Authorities an absolute-form target may name: the bound address and `http[].host`. */
  #ownHosts = new Set<string>();
  readonly #clock: Clock;
  readonly #adminToken: string;
  readonly #log: Logger;
  #address: AddressInfo | undefined;
  readonly #upgraded = new Set<Duplex>();
  /** Vary names and hit-for-miss marks, bounded in bytes by `cache.maxBytes`. */
  readonly #side: SideMemory;
  /** Client connections open (a set: a connection re-emitted after a refused Upgrade is one). */
  readonly #sockets = new Set<Socket>();
  readonly #onAcceptError: (err: NodeJS.ErrnoException) => void;
  /** Drops the entries of gateway routes a reload removed. */
  readonly #dropEntries: (tags: string[]) => void;

  constructor(deps: HttpListenerDeps) {
    const { config, store, clock } = deps;
    this.name = config.name;
    this.#config = config;
    this.#adminToken = deps.adminToken;
    this.#log = deps.log;
    this.#onAcceptError = deps.onAcceptError ?? (() => undefined);
    const upstreamFailed = (err: unknown): void => {
      const reason = upstreamErrorReason(err);
      deps.onUpstreamError?.(reason);
      this.#warn(`upstream ${reason}`, 'upstream request failed', { reason, err: errorText(err) });
    };
    this.#clock = clock;
    this.#strip = lowerSet(config.stripRequestHeaders);
    this.#upgradeProtocols = lowerSet(config.upgradeProtocols);
    const side = new SideMemory(store.maxBytes, clock);
    this.#side = side;
    const source = `http:${config.name}`;
    this.#dropEntries = (tags) => void (tags.length > 0 && deps.invalidate({ tags }, source));
    this.#services = new Services(config, {
      listener: config.name,
      store,
      clock,
      log: deps.log,
      upstreamFailed,
      Policy: clockedPolicy(clock),
      invalidate: (target) => deps.invalidate(target, source),
      reporter: (route) => httpReporter(deps, config.name, route),
      upstreamResponded: (status) => deps.onUpstreamResponse?.(statusClass(status)),
      markHitForMiss: (key) => side.markHitForMiss(key),
      learnVary: (base, names) => side.learnVary(base, names),
      varyOf: (base) => side.varyOf(base),
      isHitForMiss: (key) => side.isHitForMiss(key),
    });
    this.#server = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => this.#handle(req, res));
    this.#server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#upgrade(req, socket, head));
    this.#server.on('clientError', clientError);
    this.#server.on('connection', (socket: Socket) => {
      if (this.#sockets.has(socket)) return;
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
    // Node closes connections past maxConnections as it accepts them, and says so here.
    this.#server.on('drop', () => {
      deps.onRefused?.('limit');
      this.#warn('refused limit', 'client connection refused: maxConnections reached', { maxConnections: this.#config.maxConnections });
    });
    setMaxConnections(this.#server, config.maxConnections);
  }

  /** A warning, at most one per `key` every WARN_INTERVAL_MS, with how many were held back meanwhile. */
  #warn(key: string, msg: string, fields: Record<string, unknown>): void {
    this.#log.warnEvery('SC_WARN_UPSTREAM_FAILED', msg, `${this.name}\u0000${key}`, WARN_INTERVAL_MS, fields);
  }

  /** Requests waiting for an upstream connection now (read-only, for tests). */
  get upstreamQueued(): number {
    return this.#services.upstreams.reduce((sum, u) => sum + u.queued, 0);
  }

  /** Client connections open now. */
  get clientConnections(): number {
    return this.#sockets.size;
  }

  /** Connections to the upstreams open now (the pools'). */
  get upstreamConnections(): number {
    return this.#services.upstreams.reduce((sum, u) => sum + u.connected, 0);
  }

  /**
   * `GET /cache/explain?listener=&url=`: what this listener would do with the request (nothing is
   * sent upstream). A gateway picks the route by the `host` header given, as for a request.
   */
  explain(url: string, method: string, headers: IncomingMessage['headers'], reveal: boolean): HttpExplanation {
    return explainOnServices(this.#services, url, method, headers, reveal);
  }

  /** Applies a reloaded entry whose changes need no new socket or pool (see `HTTP_RESTART_KEYS`). */
  update(config: HttpListenerConfig): void {
    this.#config = config;
    this.#strip = lowerSet(config.stripRequestHeaders);
    this.#upgradeProtocols = lowerSet(config.upgradeProtocols);
    this.#dropEntries(this.#services.update(config));
    setMaxConnections(this.#server, config.maxConnections);
  }

  async start(): Promise<AddressInfo> {
    this.#address = await listen(this.#server, this.#config.listen, `http listener ${this.name}`, this.#onAcceptError);
    for (const authority of [formatAddress(this.#address), this.#config.host]) {
      const host = authority === undefined ? undefined : hostOf(authority);
      if (host !== undefined) this.#ownHosts.add(host);
    }
    this.#log.info('http listener ready', { address: formatAddress(this.#address), upstream: this.#services.upstreams.map((u) => u.origin).join(' ') });
    return this.#address;
  }

  /** Stops accepting; requests in flight finish until `graceMs`, then their connections close. */
  async stop(graceMs: Millis): Promise<boolean> {
    const deadline = performance.now() + graceMs;
    const forced = await closeGracefully(this.#server, graceMs, () => {
      for (const socket of this.#upgraded) socket.destroy();
    });
    await settleWithin(Promise.all(this.#services.upstreams.map((u) => u.destroy())), deadline - performance.now());
    return forced;
  }

  get listening(): boolean {
    return this.#server.listening;
  }

  get address(): AddressInfo {
    if (this.#address === undefined) throw new Error(`http listener ${this.name} is not listening`);
    return this.#address;
  }

  /** Bytes the Vary memory and hit-for-miss marks account for now, and their bound (read-only, for tests). */
  get sideMemory(): { accountedBytes: number; limitBytes: number } {
    return { accountedBytes: this.#side.accountedBytes, limitBytes: this.#side.limitBytes };
  }

  /** `http://host:port` of the bound listener. */
  get url(): string {
    return httpUrlOf(this.address);
  }

  /**
   * Puts a request in its normal form, in place, before anything reads it: the target in the one
   * normal form (`target.ts`; `req.url` then holds it) and the `stripRequestHeaders` fields removed.
   * False for a target sidecache does not serve (malformed, or absolute for another authority).
   */
  #normalize(req: IncomingMessage): boolean {
    // A gateway routes by the target's authority (`routes.ts`): a host no route names is refused there.
    const origin = originForm(req.url ?? '', (host) => this.#services.gateway || this.#ownHosts.has(host));
    const target = origin === undefined ? undefined : normalizeTarget(origin);
    if (target === undefined) return false;
    req.url = target;
    stripRequestFields(req, this.#strip);
    return true;
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const started = this.#clock.now();
    const host = this.#services.gateway ? requestHost(req) : undefined;
    if (host === null) return badHost(res);
    if (isAsteriskOptions(req.method, req.url)) {
      const service = this.#services.find(host, '*');
      if (typeof service === 'string') return noRoute(res, service);
      stripRequestFields(req, this.#strip);
      return void forwardAsterisk(service.ctx, req, res, started);
    }
    if (!this.#normalize(req)) return badTarget(res);
    const method = req.method ?? 'GET';
    const url = req.url!;
    const path = pathOf(url);
    const service = this.#services.find(host, path);
    if (typeof service === 'string') return noRoute(res, service);
    const ctx = service.ctx;
    if (method === 'PURGE') return purge(req, res, url, ctx, this.#adminToken);
    const route = service.rules.match(path);
    // Never cached, but forwarded like everything else: the same fields, timeouts and metrics.
    if (!route.cache) return void forwardMethod(ctx, req, res, started, 'bypass');
    if (method !== 'GET' && method !== 'HEAD') return void forwardMethod(ctx, req, res, started, 'method');
    // A Range is answered from a stored complete 200 (RFC 9110 §14), or passed upstream when it cannot be.
    if (req.headers.range !== undefined) return readThroughRange(ctx, req, res, route, url, started);
    readThrough(ctx, req, res, route, url, started);
  }

  /** An Upgrade request: tunnelled after a 101 when its protocol is allowed, else answered as a plain request. */
  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const host = this.#services.gateway ? requestHost(req) : undefined;
    if (host === null || !this.#normalize(req)) {
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const service = this.#services.find(host, pathOf(req.url!));
    if (typeof service === 'string') {
      socket.end(noRouteHead(service));
      return;
    }
    if (!isAllowedUpgrade(req.headers.upgrade, this.#upgradeProtocols)) return reparseWithoutUpgrade(this.#server, req, socket, head);
    // Upgraded sockets leave node:http's bookkeeping: tracked here so a stop can end them.
    this.#upgraded.add(socket);
    socket.once('close', () => this.#upgraded.delete(socket));
    forwardUpgrade(service.ctx, req, socket, head, this.#clock.now());
  }
}

/** Keys of an `http[]` entry that a reload cannot apply: they are built into sockets and pools. */
export const HTTP_RESTART_KEYS = [
  'listen',
  'upstream',
  'connections',
  'connectTimeout',
  'headersTimeout',
  'bodyTimeout',
  'ca',
  'forwardedHeaders',
  'host',
] as const;

/** `maxConnections: 0` is no limit of sidecache's own (Node would refuse every connection at 0). */
function setMaxConnections(server: http.Server, max: number): void {
  server.maxConnections = max === 0 ? Infinity : max;
}

function lowerSet(names: readonly string[]): ReadonlySet<string> {
  return new Set(names.map((n) => n.toLowerCase()));
}

function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}
