/**
 * The connection pool to one upstream origin (undici), which every request sidecache sends goes
 * through: fills, forwarded methods, pass-through routes and Upgrade handshakes.
 */
import type { Readable } from 'node:stream';
import { rootCertificates } from 'node:tls';
import { Pool, type Dispatcher } from 'undici';
import type { HttpServiceConfig } from '../../config/schema.js';
import { readPem } from '../read-pem.js';
import { UpstreamDeadlineError, UpstreamQueueFullError } from './gateway-error.js';
import { withForwardedHost } from './headers.js';
import { type AbortSignalLike, type DispatchedResponse, DispatchedRequest } from './dispatched-body.js';
import { type AbortSwitch, RequestAbort } from './request-abort.js';

export interface UpstreamRequest {
  method: string;
  /** Path and query in their normal form (`target.ts`). */
  url: string;
  headers: string[];
  body: Readable | null;
  /**
   * The request's controller: the caller aborts it when its client leaves; a headers deadline
   * aborts it too. One controller per request, rather than one more here linked to the caller's.
   */
  abort: AbortSwitch | undefined;
  /** Called with each interim (1xx) response the upstream sends before its final one. */
  onInfo?: ((info: InterimResponse) => void) | undefined;
}

/** An interim (1xx) response (RFC 9110 §15.2), such as 103 Early Hints. */
export interface InterimResponse {
  statusCode: number;
  headers: Record<string, string | string[]>;
}

/** One upstream origin: a pool of keep-alive connections (undici) and the path prefix of its URL. */
export class Upstream {
  /** `host[:port]` of the upstream URL, sent as Host. */
  readonly host: string;
  readonly origin: string;
  readonly #basePath: string;
  /** The client path prefix a gateway route replaces by `#basePath` (`routes[].path`); '' for a listener's one upstream. */
  readonly #strip: string;
  readonly #pool: Pool;
  /** X-Forwarded-Host on every request (`http[].host`), unless `forwardedHeaders: off`. */
  readonly #publicHost: string | undefined;
  /** Time from a request's arrival here to its response headers, the wait for a connection included (0: none). */
  readonly #headersDeadlineMs: number;
  /** Hears of every request that got no response (not those the client abandoned), to count and log it. */
  readonly #onFailure: (err: unknown) => void;
  /** Requests that may wait in the pool's queue for a connection (`maxQueued`; 0: no limit); applies on reload. */
  maxQueued: number;
  /**
   * Requests handed to the pool whose response head has not come nor their request failed: an
   * upper bound of those queued, since a request leaves the queue before either (undici rejects
   * one aborted while queued only when a connection takes it). Below `maxQueued`, the queue
   * cannot be full, and the pool's stats (a sum over every connection) are not read.
   */
  #unsettled = 0;
  /** An Upgrade was sent: its requests are not in `#unsettled`, so the stats are read from then on. */
  #upgraded = false;

  /** Hears the status of every response the upstream sent (for `sidecache_upstream_responses_total`). */
  readonly #onResponse: (status: number) => void;

  constructor(
    config: HttpServiceConfig,
    onFailure: (err: unknown) => void = () => undefined,
    strip = '',
    onResponse: (status: number) => void = () => undefined,
  ) {
    const url = new URL(config.upstream);
    this.host = url.host;
    this.origin = url.origin;
    this.#basePath = url.pathname.replace(/\/$/, '');
    this.#strip = strip;
    this.#publicHost = config.forwardedHeaders === 'off' ? undefined : config.host;
    this.#headersDeadlineMs = config.headersTimeout;
    this.#onFailure = onFailure;
    this.#onResponse = onResponse;
    this.maxQueued = config.maxQueued;
    this.#pool = new Pool(url.origin, {
      connections: config.connections,
      connectTimeout: config.connectTimeout,
      headersTimeout: config.headersTimeout,
      bodyTimeout: config.bodyTimeout,
      ...(config.ca !== undefined && { connect: { ca: [...rootCertificates, readPem(config.ca, `http[${config.name}].ca`)] } }),
    });
  }

  /**
   * The path the upstream is asked for: its URL's path prefix, then the client's path and query
   * (without the prefix a gateway route replaces: `/billing/x` → `/v2/x`).
   */
  pathFor(url: string): string {
    if (this.#strip === '') return this.#basePath + url;
    const path = this.#basePath + url.slice(this.#strip.length);
    return path.startsWith('/') ? path : `/${path}`;
  }

  /**
   * The client's path and query for a path in the upstream's URL space (the inverse of `pathFor`),
   * or undefined when the path lies outside the upstream URL's prefix.
   */
  clientPathOf(path: string): string | undefined {
    const base = this.#basePath;
    if (base !== '' && !path.startsWith(`${base}/`) && !path.startsWith(`${base}?`)) return undefined;
    const rest = path.slice(base.length);
    return this.#strip === '' ? rest : this.#strip + rest;
  }

  /**
   * Sends a request through the pool. undici's own headersTimeout starts once a connection takes
   * the request, and a request aborted while queued leaves the queue only when a connection frees
   * up: with an origin that never answers, the wait would be unbounded. So the deadline runs from
   * here, and a full queue is refused at once (503 with Retry-After, `gateway-error.ts`).
   */
  request(req: UpstreamRequest): Promise<Dispatcher.ResponseData> {
    return this.#send(req, (signal, done) => {
      this.#pool
        .request({
          method: req.method as Dispatcher.HttpMethod,
          path: this.pathFor(req.url),
          headers: withForwardedHost(req.headers, this.#publicHost),
          body: req.body,
          ...(signal !== undefined && { signal: signal as AbortSignal | RequestAbort }),
          ...(req.onInfo !== undefined && { onInfo: req.onInfo }),
        })
        .then((response) => done(undefined, response), done);
    });
  }

  /**
   * A fill's request (no request body), as `request` sends it, answered by undici's dispatch
   * handler: the body is pushed to its reader, not wrapped in a stream (`dispatched-body.ts`).
   */
  fetch(req: Omit<UpstreamRequest, 'body'>): Promise<DispatchedResponse> {
    return this.#send(req, (signal, done) => {
      const handler = new DispatchedRequest(done, req.onInfo, signal);
      this.#pool.dispatch(
        { method: req.method as Dispatcher.HttpMethod, path: this.pathFor(req.url), headers: withForwardedHost(req.headers, this.#publicHost) },
        handler,
      );
    });
  }

  /**
   * Sends a request with `start`, which reports its head or its failure to `done` once. The queue
   * limit, the headers deadline and the counts of responses and failures apply here for both kinds.
   */
  #send<T extends { statusCode: number; body: { destroy(): unknown } }>(
    req: Pick<UpstreamRequest, 'abort'>,
    start: (signal: AbortSignalLike | undefined, done: (err: unknown, response?: T) => void) => void,
  ): Promise<T> {
    if (this.#queueFull()) return this.#failed(req, new UpstreamQueueFullError(this.maxQueued));
    const deadlineMs = this.#headersDeadlineMs;
    const controller = req.abort ?? (deadlineMs === 0 ? undefined : new RequestAbort());
    this.#unsettled++;
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      let answered = false;
      const fail = (err: unknown): void => {
        if (settled) return;
        settled = true;
        // A failure the client caused by leaving is not the upstream's (nor counted).
        if (err instanceof UpstreamDeadlineError || controller?.signal.aborted !== true) this.#onFailure(err);
        reject(err);
      };
      const timer =
        deadlineMs === 0
          ? undefined
          : setTimeout(() => {
              // Still queued: undici drops it unsent when a connection takes it. Sent: the request ends.
              const err = new UpstreamDeadlineError(deadlineMs);
              fail(err);
              controller!.abort(err);
            }, deadlineMs);
      // The client's abort ends the request (and its body, once the response has begun).
      start(controller?.signal as AbortSignalLike | undefined, (err, response) => {
        if (answered) return;
        answered = true;
        this.#unsettled--;
        clearTimeout(timer);
        if (response === undefined) return fail(err);
        this.#onResponse(response.statusCode);
        if (settled) return void response.body.destroy();
        settled = true;
        resolve(response);
      });
    });
  }

  /** Whether `maxQueued` requests wait for a connection already (see `#unsettled`). */
  #queueFull(): boolean {
    if (this.maxQueued === 0 || (!this.#upgraded && this.#unsettled < this.maxQueued)) return false;
    return this.#pool.stats.queued >= this.maxQueued;
  }

  /** Reports a request that got no response, unless its client abandoned it; the request fails with `err`. */
  #failed(req: Pick<UpstreamRequest, 'abort'>, err: unknown): Promise<never> {
    if (req.abort?.signal.aborted !== true) this.#onFailure(err);
    return Promise.reject(err);
  }

  /**
   * An Upgrade handshake: `handler` gets the upstream's socket after a `101`, or the response it
   * answered instead (undici's dispatch handler).
   */
  /** Sends an Upgrade request through the pool; throws UpstreamQueueFullError, as `request` answers, when the queue is full. */
  upgrade(req: Omit<UpstreamRequest, 'body' | 'abort'>, protocol: string, handler: Dispatcher.DispatchHandler): void {
    if (this.#queueFull()) throw new UpstreamQueueFullError(this.maxQueued);
    this.#upgraded = true;
    this.#pool.dispatch(
      {
        method: req.method as Dispatcher.HttpMethod,
        path: this.pathFor(req.url),
        headers: withForwardedHost(req.headers, this.#publicHost),
        upgrade: protocol,
      },
      handler,
    );
  }

  /** Connections to the upstream open now. */
  get connected(): number {
    return this.#pool.stats.connected;
  }

  /** Requests waiting in the pool's queue for a connection now. */
  get queued(): number {
    return this.#pool.stats.queued;
  }

  destroy(): Promise<void> {
    return this.#pool.destroy();
  }

  /** Takes no new requests; those in flight finish (a route removed by a reload). */
  close(): Promise<void> {
    return this.#pool.close();
  }
}
