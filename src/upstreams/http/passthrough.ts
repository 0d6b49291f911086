/**
 * Pass-through with http-proxy for what is never cached: Upgrade requests and `cache: false`
 * routes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import httpProxy from 'http-proxy';
import type { HttpListenerConfig } from '../../config/schema.js';
import { formatCacheStatus } from './cache-status.js';
import { classifyUpstreamError, type GatewayFailure, writeGatewayError } from './gateway-error.js';
import { readPem } from '../read-pem.js';

/**
 * Traffic that is never cached goes through http-proxy untouched: WebSocket and other `Upgrade`
 * requests, and `cache: false` routes. http-proxy is old and unmaintained, so it is
 * used in this module only.
 */
export class Passthrough {
  readonly #proxy: httpProxy;
  readonly #onError: (failure: GatewayFailure, err: unknown) => void;
  readonly #upstream: string;
  readonly #ca: string | undefined;

  constructor(config: HttpListenerConfig, onError: (failure: GatewayFailure, err: unknown) => void) {
    this.#onError = onError;
    this.#upstream = config.upstream;
    this.#ca = config.ca === undefined ? undefined : readPem(config.ca, `http[${config.name}].ca`);
    this.#proxy = httpProxy.createProxyServer({
      target: config.upstream,
      changeOrigin: true,
      xfwd: config.forwardedHeaders !== 'off',
      ws: true,
      proxyTimeout: config.headersTimeout,
      ...(this.#ca !== undefined && { ca: this.#ca }),
    });
    this.#proxy.on('proxyRes', (_proxyRes, _req, res) => {
      res.setHeader('cache-status', formatCacheStatus({ fwd: 'bypass' }));
    });
    this.#proxy.on('error', (err, _req, target) => this.#fail(err, target));
  }

  web(req: IncomingMessage, res: ServerResponse): void {
    this.#proxy.web(req, res);
  }

  /** WebSocket through http-proxy; any other protocol (h2c, custom) through a plain tunnel. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (req.headers.upgrade?.toLowerCase() === 'websocket') return this.#proxy.ws(req, socket, head);
    this.#tunnel(req, socket, head);
  }

  /** http-proxy refuses upgrades other than WebSocket: replay the request head and splice the sockets. */
  #tunnel(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const target = new URL(this.#upstream);
    const port = Number(target.port || (target.protocol === 'https:' ? 443 : 80));
    const upstream =
      target.protocol === 'https:'
        ? tls.connect({ host: target.hostname, port, servername: target.hostname, ...(this.#ca !== undefined && { ca: this.#ca }) })
        : net.connect(port, target.hostname);
    const lines = [`${req.method} ${target.pathname.replace(/\/$/, '')}${req.url ?? '/'} HTTP/1.1`];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      if (req.rawHeaders[i]!.toLowerCase() !== 'host') lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
    }
    lines.push(`Host: ${target.host}`);
    upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
    if (head.length > 0) upstream.write(head);
    upstream.pipe(socket).pipe(upstream);
    const close = (err?: Error): void => {
      if (err !== undefined) this.#onError(classifyUpstreamError(err), err);
      upstream.destroy();
      socket.destroy();
    };
    upstream.on('error', close);
    socket.on('error', close);
    upstream.on('close', () => socket.destroy());
    socket.on('close', () => upstream.destroy());
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
