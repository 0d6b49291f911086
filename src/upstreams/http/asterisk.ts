/**
 * `OPTIONS *` (RFC 9110 §9.3.7, RFC 9112 §3.2.4): a question about the server as a whole, which a
 * proxy forwards with the asterisk-form target. undici refuses a path that does not start with
 * `/`, so this one request goes through node:http (or node:https), on a connection of its own.
 * It is never cached and invalidates nothing (OPTIONS is safe).
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { rootCertificates } from 'node:tls';
import { readPem } from '../read-pem.js';
import { formatCacheStatus } from './cache-status.js';
import type { ListenerContext } from './context.js';
import { classifyUpstreamError, errorText, writeGatewayError } from './gateway-error.js';
import { clientResponseHeaders, forwardRequestHeaders, withForwardedHost } from './headers.js';
import { streamBody } from './respond.js';

/** The one request whose asterisk-form target is forwarded as it is. */
export function isAsteriskOptions(method: string | undefined, target: string | undefined): boolean {
  return method === 'OPTIONS' && target === '*';
}

/** Forwards `OPTIONS *` to the upstream and streams its answer back (`Cache-Status: fwd=method`). */
export async function forwardAsterisk(ctx: ListenerContext, req: IncomingMessage, res: ServerResponse, started: number): Promise<void> {
  const upstreamStart = ctx.clock.now();
  try {
    const response = await sendAsterisk(ctx, req);
    const fields = clientResponseHeaders(response.headers, {
      tagHeader: ctx.tagHeader,
      exposeTags: ctx.config.exposeTags,
      mode: ctx.config.forwardedHeaders,
      dropSetCookie: false,
    });
    fields.push('cache-status', formatCacheStatus({ fwd: 'method' }));
    res.writeHead(response.statusCode ?? 502, fields);
    await streamBody(res, response, true);
    ctx.report('bypass', started, ctx.clock.now() - upstreamStart, res);
  } catch (err) {
    ctx.log.debug('upstream request failed', { method: 'OPTIONS', err: errorText(err) });
    ctx.report('error', started, undefined, res);
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    writeGatewayError(res, classifyUpstreamError(err), 'method');
  }
}

/** Sends the request with the fields every forwarded request gets; resolves with the response head. */
function sendAsterisk(ctx: ListenerContext, req: IncomingMessage): Promise<IncomingMessage> {
  const { config, upstream } = ctx;
  const url = new URL(upstream.origin);
  const secure = url.protocol === 'https:';
  const fields = withForwardedHost(
    forwardRequestHeaders(req, { upstreamHost: upstream.host, mode: config.forwardedHeaders, unconditional: false }),
    config.forwardedHeaders === 'off' ? undefined : config.host,
  );
  const options: https.RequestOptions = {
    method: 'OPTIONS',
    host: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port === '' ? (secure ? 443 : 80) : Number(url.port),
    path: '*',
    headers: fields,
    agent: false,
    ...(secure && config.ca !== undefined && { ca: [...rootCertificates, readPem(config.ca, `http[${config.name}].ca`)] }),
  };
  return new Promise((resolve, reject) => {
    const out = (secure ? https : http).request(options, resolve);
    out.on('error', reject);
    // One idle limit for the whole exchange: connecting, the head, and the body.
    out.setTimeout(Math.max(config.connectTimeout, config.headersTimeout), () =>
      out.destroy(Object.assign(new Error('upstream timeout'), { code: 'ETIMEDOUT' })),
    );
    req.once('close', () => {
      if (!req.complete) out.destroy();
    });
    req.pipe(out);
  });
}
