/**
 * The connection pool to one upstream origin (undici), which every fill and forwarded method goes
 * through.
 */
import type { Readable } from 'node:stream';
import { rootCertificates } from 'node:tls';
import { Pool, type Dispatcher } from 'undici';
import type { HttpListenerConfig } from '../../config/schema.js';
import { readPem } from '../read-pem.js';

export interface UpstreamRequest {
  method: string;
  /** Path and query as the client sent them. */
  url: string;
  headers: string[];
  body: Readable | null;
  signal: AbortSignal | undefined;
}

/** One upstream origin: a pool of keep-alive connections (undici) and the path prefix of its URL. */
export class Upstream {
  /** `host[:port]` of the upstream URL, sent as Host. */
  readonly host: string;
  readonly origin: string;
  readonly #basePath: string;
  readonly #pool: Pool;

  constructor(config: HttpListenerConfig) {
    const url = new URL(config.upstream);
    this.host = url.host;
    this.origin = url.origin;
    this.#basePath = url.pathname.replace(/\/$/, '');
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
      headers: req.headers,
      body: req.body,
      signal: req.signal ?? null,
    });
  }

  destroy(): Promise<void> {
    return this.#pool.destroy();
  }
}
