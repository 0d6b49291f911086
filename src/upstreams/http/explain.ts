/**
 * `GET /cache/explain?listener=&url=`: what an HTTP listener would do with a request, without
 * sending anything upstream: the rule that matches, whether and how a response may be stored
 * (RFC 9111 with the listener's settings), the key, and whether an entry answers now.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Store } from '../../cache/store.js';
import type { Clock } from '../../clock.js';
import type { HttpServiceConfig } from '../../config/schema.js';
import { describeHttpKey, type HttpKeyDescription, shownUrl } from './describe-key.js';
import { HTTP_SPACE } from './entry.js';
import { baseKey, variantKey } from './key.js';
import type { HttpRoute, RouteTable } from './rules.js';
import type { Services } from './routes.js';
import { hostOf, normalizeTarget } from './target.js';

export interface HttpExplainInput {
  name: string;
  config: HttpServiceConfig;
  routes: RouteTable;
  store: Store;
  clock: Clock;
  varyOf(base: string): readonly string[] | undefined;
}

export interface HttpExplanation {
  url: string;
  queryHidden?: true;
  method: string;
  /** The first rule that matches (its `path` and index in `rules`), or null: the listener's defaults apply. */
  rule: { index: number; path: string; ttlMs: number | null; cache: boolean; tags: readonly string[] } | null;
  /** `store` (a storable response is kept), `pass` (never stored), `refuse` (the target is answered 400). */
  decision: 'store' | 'pass' | 'refuse';
  reason: string;
  /** Freshness given to a storable response: the rule's `ttl`, else the response's own, else `defaultTtl`. */
  ttlMs?: number | null;
  key?: HttpKeyDescription;
  /** The entry that would answer now, if any. */
  stored?: { ttlSeconds: number; bytes: number; hits: number } | null;
}

/** The explanation for `method rawUrl` with `headers` (for the Vary fields). */
export function explainHttp(input: HttpExplainInput, rawUrl: string, method: string, headers: IncomingHttpHeaders, reveal: boolean): HttpExplanation {
  const target = rawUrl.startsWith('/') ? normalizeTarget(rawUrl) : undefined;
  if (target === undefined) {
    return {
      ...shownUrl(rawUrl, reveal),
      method,
      rule: null,
      decision: 'refuse',
      reason: 'not a path in origin form, or malformed percent-encoding: answered 400',
    };
  }
  const route = input.routes.match(pathOf(target));
  const rule = ruleOf(input, route);
  const answer = { ...shownUrl(target, reveal), method, rule };
  if (method === 'PURGE')
    return {
      ...answer,
      decision: 'pass',
      reason: 'PURGE removes every stored variant of the URL (from loopback, or with the admin token); nothing is sent upstream',
    };
  if (!route.cache) return { ...answer, decision: 'pass', reason: `rule ${JSON.stringify(route.glob)} says cache: false: passed through, never stored` };
  if (method !== 'GET' && method !== 'HEAD') {
    return { ...answer, decision: 'pass', reason: `${method} is not cacheable: forwarded, and a successful answer invalidates the URL (RFC 9111 §4.4)` };
  }
  const base = baseKey(input.name, target);
  const names = input.varyOf(base);
  const key = names === undefined ? base : variantKey(base, names, headers);
  const entry = input.store.peek(key);
  const now = input.clock.now();
  const stored =
    entry === undefined || entry.space !== HTTP_SPACE
      ? null
      : { ttlSeconds: Math.round((entry.freshUntil - now) / 1000), bytes: entry.bytes, hits: entry.hits };
  return { ...answer, decision: 'store', ...freshness(input.config, route), key: describeHttpKey(key, reveal)!, stored };
}

/** Where freshness comes from (RFC 9111 §4.2.1), as the listener applies it. */
function freshness(config: HttpServiceConfig, route: HttpRoute): { reason: string; ttlMs: number | null } {
  const rule = route.ttlMs !== undefined ? `rule ${JSON.stringify(route.glob)}: ` : '';
  if (route.ttlMs !== undefined) return { reason: `${rule}a storable response (RFC 9111 §3) is fresh for the rule's ttl`, ttlMs: route.ttlMs };
  if (config.defaultTtl > 0) {
    return {
      reason: 'a storable response (RFC 9111 §3) is fresh as its Cache-Control/Expires say, or for defaultTtl when they say nothing',
      ttlMs: config.defaultTtl,
    };
  }
  return {
    reason: 'no rule ttl and defaultTtl 0: stored only when the response itself gives freshness (Cache-Control max-age/s-maxage or Expires, RFC 9111 §4.2.1)',
    ttlMs: null,
  };
}

function ruleOf(input: HttpExplainInput, route: HttpRoute): HttpExplanation['rule'] {
  if (input.routes.isDefault(route)) return null;
  const index = input.config.rules.findIndex((r) => r.path === route.glob);
  return { index, path: route.glob, ttlMs: route.ttlMs ?? null, cache: route.cache, tags: route.tags };
}

function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

/**
 * A listener's explanation: a gateway picks the route by the `host` header given, as for a
 * request; a request no route takes is refused as it would be.
 */
export function explainOnServices(services: Services, url: string, method: string, headers: IncomingHttpHeaders, reveal: boolean): HttpExplanation {
  const target = url.startsWith('/') ? normalizeTarget(url) : undefined;
  const host = services.gateway && typeof headers.host === 'string' ? hostOf(headers.host) : undefined;
  const service = services.find(host, pathOnly(target ?? '/'));
  if (typeof service === 'string') {
    return {
      url: pathOnly(url),
      method,
      rule: null,
      decision: 'refuse',
      reason: `${service}: no route of this listener takes the request (answered ${service === 'no-route' ? 404 : 421})`,
    };
  }
  const ctx = service.ctx;
  return explainHttp(
    { name: ctx.name, config: ctx.config, routes: service.rules, store: ctx.store, clock: ctx.clock, varyOf: ctx.varyOf },
    url,
    method,
    headers,
    reveal,
  );
}

function pathOnly(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}
