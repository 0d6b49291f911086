import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import httpProxy from 'http-proxy';
import type { HttpListenerConfig } from '../../config/schema.js';
import { formatCacheStatus } from './cache-status.js';
import { writeGatewayError } from './gateway-error.js';
import { readPem } from '../read-pem.js';
import { classifyUpstreamError, type UpstreamFailure } from './forward.js';

/**
 * Traffic that is never cached goes through http-proxy untouched: WebSocket and other `Upgrade`
 * requests, and `cache: false` routes. http-proxy is old and unmaintained (DESIGN.md), so it is
 * used in this module only.
 */
export class Passthrough {
  readonly #proxy: httpProxy;
  readonly #onError: (failure: UpstreamFailure, err: unknown) => void;

  constructor(config: HttpListenerConfig, onError: (failure: UpstreamFailure, err: unknown) => void) {
    this.#onError = onError;
    this.#proxy = httpProxy.createProxyServer({
      target: config.upstream,
      changeOrigin: true,
      xfwd: config.forwardedHeaders !== 'off',
      ws: true,
      proxyTimeout: config.headersTimeout,
      ...(config.ca !== undefined && { ca: readPem(config.ca, `http[${config.name}].ca`) }),
    });
    this.#proxy.on('proxyRes', (_proxyRes, _req, res) => {
      res.setHeader('cache-status', formatCacheStatus({ fwd: 'bypass' }));
    });
    this.#proxy.on('error', (err, _req, target) => this.#fail(err, target));
  }

  web(req: IncomingMessage, res: ServerResponse): void {
    this.#proxy.web(req, res);
  }

  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.#proxy.ws(req, socket, head);
  }

  close(): void {
    this.#proxy.close();
  }

  #fail(err: unknown, target: ServerResponse | Duplex | undefined): void {
    const failure = classifyUpstreamError(err);
    this.#onError(failure, err);
    if (target === undefined) return;
    if (!('writeHead' in target)) {
      target.destroy();
      return;
    }
    if (target.headersSent) {
      target.destroy();
      return;
    }
    writeGatewayError(target, failure, 'bypass');
  }
}
