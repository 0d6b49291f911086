/**
 * Requests the cache does not answer (methods other than GET and HEAD, and Range requests it cannot answer): forwarded
 * as they are, with the invalidations unsafe methods call for.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type ForwardReason, formatCacheStatus } from './cache-status.js';
import { classifyUpstreamError, errorText, writeGatewayError } from './gateway-error.js';
import type { ListenerContext } from './context.js';
import type { LocalInvalidation } from '../local-invalidation.js';
import type { Upstream } from './forward.js';
import { clientResponseHeaders, forwardRequestHeaders } from './headers.js';
import { urlTag } from '../../cache/tags.js';
import { streamBody } from './respond.js';
import { hostOf, normalizeTarget } from './target.js';

/** RFC 9110 §9.2.1 (https://www.rfc-editor.org/rfc/rfc9110#section-9.2.1): the safe methods. */
const SAFE = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);

/**
 * Methods whose success invalidates (RFC 9111 §4.4): every method not known to be safe, WebDAV's
 * and ones nobody here knows included.
 */
const UNSAFE = { has: (method: string): boolean => !SAFE.has(method) };

/**
 * A request the cache does not answer (any method but GET and HEAD, or a Range request it cannot answer): forwarded with its body
 * streaming, the answer streamed back. After a non-error answer to an unsafe method, the stored
 * responses of the target URI and of same-origin Location / Content-Location are invalidated
 * before the client sees the answer (RFC 9111 §4.4).
 */
export async function forwardMethod(
  ctx: ListenerContext,
  req: IncomingMessage,
  res: ServerResponse,
  started: number,
  fwd: ForwardReason,
  detail?: string,
): Promise<void> {
  const method = req.method ?? 'GET';
  const controller = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) controller.abort();
  });
  const upstreamStart = ctx.clock.now();
  try {
    const response = await ctx.upstream.request({
      method,
      url: req.url ?? '/',
      headers: forwardRequestHeaders(req, { upstreamHost: ctx.upstream.host, mode: ctx.config.forwardedHeaders, unconditional: false }),
      body: hasBody(req) ? req : null,
      abort: controller,
    });
    // The other replicas are told before the client hears of the write (bounded by the publish wait).
    if (UNSAFE.has(method) && response.statusCode >= 200 && response.statusCode < 400) await invalidateTargets(ctx, req, response.headers).published;
    const fields = clientResponseHeaders(response.headers, {
      tagHeader: ctx.tagHeader,
      exposeTags: ctx.config.exposeTags,
      mode: ctx.config.forwardedHeaders,
      dropSetCookie: false,
    });
    fields.push('cache-status', formatCacheStatus({ fwd, ...(detail !== undefined && { detail }) }));
    res.writeHead(response.statusCode, fields);
    await streamBody(res, response.body as AsyncIterable<Buffer>, true);
    ctx.report('bypass', started, ctx.clock.now() - upstreamStart, res);
  } catch (err) {
    ctx.log.debug('upstream request failed', { method, err: errorText(err) });
    ctx.report('error', started, undefined, res);
    // Past the headers the body failed: the origin's failure unless the client left (it aborts the request).
    if (res.headersSent && !controller.signal.aborted) ctx.upstreamFailed(err);
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    const failure = classifyUpstreamError(err);
    writeGatewayError(res, failure, fwd);
  }
}

/** Node marks bodiless requests: no Content-Length and no Transfer-Encoding. */
function hasBody(req: IncomingMessage): boolean {
  return req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
}

function invalidateTargets(ctx: ListenerContext, req: IncomingMessage, headers: Record<string, string | string[] | undefined>): LocalInvalidation {
  const urls = new Set([req.url ?? '/']);
  for (const name of ['location', 'content-location']) {
    const value = headers[name];
    const url = typeof value === 'string' ? targetPath(value, req.url ?? '/', ctx.upstream, publicHost(ctx.config.host)) : undefined;
    if (url !== undefined) urls.add(url);
  }
  return ctx.invalidate({ tags: [...urls].map((u) => normalUrlTag(ctx.name, u)) });
}

/** The URL tag of a target in its normal form (`target.ts`), the form entries are stored under. */
function normalUrlTag(listener: string, url: string): string {
  return urlTag(listener, normalizeTarget(url) ?? url);
}

/**
 * The path and query (as clients send them) of a `Location`/`Content-Location` reference, when
 * it names a resource of this listener (RFC 9111 §4.4). The upstream wrote the reference in its
 * own URL space: a relative one is resolved against the URL the upstream was asked for
 * (RFC 3986 §5, e.g. `items/5` after `POST /api/items` is `/api/items/5`), and the upstream's
 * path prefix is taken off (a gateway route's own prefix put back); an absolute one may also name this listener's public host
 * (`http[].host`), in the clients' space. The client's `Host` decides nothing (README, "The key
 * model"): a forged one must not turn a reference to another site into one of ours.
 */
function targetPath(reference: string, target: string, upstream: Upstream, ownHost: string | undefined): string | undefined {
  let url: URL;
  try {
    url = new URL(reference, upstream.origin + upstream.pathFor(target));
  } catch {
    // An unparsable Location names nothing we store.
    return undefined;
  }
  const path = url.pathname + url.search;
  if (url.origin === upstream.origin) return upstream.clientPathOf(path);
  return ownHost !== undefined && url.host === ownHost ? path : undefined;
}

/** `http[].host` as WHATWG URL spells a host (lower case, default port left out). */
function publicHost(host: string | undefined): string | undefined {
  return host === undefined ? undefined : hostOf(host);
}
