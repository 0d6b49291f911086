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

/** What went wrong talking to the upstream, as a client sees it (RFC 9110 §15.6.3, §15.6.5). */
export interface UpstreamFailure {
  status: 502 | 504;
  /** Cache-Status `detail` token. */
  detail: 'UPSTREAM-CONNECT' | 'UPSTREAM-RESET' | 'UPSTREAM-TIMEOUT';
  message: string;
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

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);
const CONNECT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'CERT_HAS_EXPIRED', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'ERR_TLS_CERT_ALTNAME_INVALID']);

/** Maps a transport error to the status a gateway answers with: timeouts 504, the rest 502. */
export function classifyUpstreamError(err: unknown): UpstreamFailure {
  const code = (err as { code?: string } | null)?.code ?? '';
  const cause = (err as { cause?: { code?: string } } | null)?.cause?.code ?? '';
  if (TIMEOUT_CODES.has(code) || TIMEOUT_CODES.has(cause)) {
    return { status: 504, detail: 'UPSTREAM-TIMEOUT', message: `the upstream did not answer in time (${code || cause})` };
  }
  if (CONNECT_CODES.has(code) || CONNECT_CODES.has(cause)) {
    return { status: 502, detail: 'UPSTREAM-CONNECT', message: `cannot connect to the upstream (${code || cause})` };
  }
  return { status: 502, detail: 'UPSTREAM-RESET', message: `the upstream connection failed (${code || cause || (err as Error)?.message || 'unknown'})` };
}
