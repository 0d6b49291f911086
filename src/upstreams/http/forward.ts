/**
 * The connection pool to one upstream origin (undici), which every request sidecache sends goes
 * through: fills, forwarded methods, pass-through routes and Upgrade handshakes.
 */
import type { Readable } from 'node:stream';
import { rootCertificates } from 'node:tls';
import { Pool, type Dispatcher } from 'undici';
import type { HttpListenerConfig } from '../../config/schema.js';
import { readPem } from '../read-pem.js';
import { withForwardedHost } from './headers.js';

export interface UpstreamRequest {
  method: string;
  /** Path and query in their normal form (`target.ts`). */
  url: string;
  headers: string[];
  body: Readable | null;
  signal: AbortSignal | undefined;
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
  readonly #pool: Pool;
  /** X-Forwarded-Host on every request (`http[].host`), unless `forwardedHeaders: off`. */
  readonly #publicHost: string | undefined;

  constructor(config: HttpListenerConfig) {
    const url = new URL(config.upstream);
    this.host = url.host;
    this.origin = url.origin;
    this.#basePath = url.pathname.replace(/\/$/, '');
    this.#publicHost = config.forwardedHeaders === 'off' ? undefined : config.host;
    this.#pool = new Pool(url.origin, {
      connections: config.connections,
      connectTimeout: config.connectTimeout,
      headersTimeout: config.headersTimeout,
      bodyTimeout: config.bodyTimeout,
      ...(config.ca !== undefined && { connect: { ca: [...rootCertificates, readPem(config.ca, `http[${config.name}].ca`)] } }),
    });
  }

  /** The path the upstream is asked for: its URL's path prefix, then the client's path and query. */
  pathFor(url: string): string {
    return this.#basePath + url;
  }

  request(req: UpstreamRequest): Promise<Dispatcher.ResponseData> {
    return this.#pool.request({
      method: req.method as Dispatcher.HttpMethod,
      path: this.pathFor(req.url),
      headers: withForwardedHost(req.headers, this.#publicHost),
      body: req.body,
      signal: req.signal ?? null,
      ...(req.onInfo !== undefined && { onInfo: req.onInfo }),
    });
  }

  /**
   * An Upgrade handshake: `handler` gets the upstream's socket after a `101`, or the response it
   * answered instead (undici's dispatch handler).
   */
  upgrade(req: Omit<UpstreamRequest, 'body' | 'signal'>, protocol: string, handler: Dispatcher.DispatchHandler): void {
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

  destroy(): Promise<void> {
    return this.#pool.destroy();
  }
}
