/**
 * Header fields across the proxy: what is removed from a request before anything reads it, what is
 * forwarded upstream (hop-by-hop removed, Via and X-Forwarded-*) and what the client gets back.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';

/** How a listener sets Via and X-Forwarded-* (config `forwardedHeaders`). */
export type ForwardedMode = 'append' | 'replace' | 'off';

/** Our Via entry (RFC 9110 §7.6.3): protocol version and a pseudonym for this hop. */
export const VIA = '1.1 sidecache';

/**
 * Hop-by-hop fields, which a proxy must not forward (RFC 9110 §7.6.1), plus the older
 * Keep-Alive/Proxy-Connection, Proxy-Authorization, which is meant for this hop alone
 * (RFC 9110 §11.7.2), and Expect: node:http already answered `100-continue` to the client
 * (RFC 9110 §10.1.1), and undici refuses the field.
 */
const HOP_BY_HOP = new Set(['connection', 'expect', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/** Conditional and range fields: a fill asks for the whole representation, whatever the client asked. */
const CONDITIONAL = new Set(['if-none-match', 'if-modified-since', 'if-match', 'if-unmodified-since', 'if-range', 'range']);

/** Names a `Connection` header lists, which are hop-by-hop for this message too. */
function connectionListed(value: string | string[] | undefined): Set<string> | undefined {
  // The usual value names a field that is hop-by-hop anyway: nothing to add.
  if (value === undefined || value === 'keep-alive') return undefined;
  const names = (Array.isArray(value) ? value.join(',') : value).toLowerCase().split(',');
  return new Set(names.map((n) => n.trim()).filter((n) => n !== ''));
}

export interface ForwardOptions {
  /** `host[:port]` of the upstream, sent as Host. */
  upstreamHost: string;
  mode: ForwardedMode;
  /** Leave out conditional and range fields (a fill for the store). */
  unconditional: boolean;
}

/**
 * Removes `names` (lower case) from a request, in place, before it is routed, keyed or forwarded:
 * every later reader (Vary keys, the policy, the upstream request) sees the same fields.
 */
export function stripRequestFields(req: IncomingMessage, names: ReadonlySet<string>): void {
  if (names.size === 0) return;
  const raw = req.rawHeaders;
  let found = false;
  for (let i = 0; i < raw.length && !found; i += 2) found = names.has(raw[i]!.toLowerCase());
  if (!found) return;
  // node:http builds `headers` and `headersDistinct` from `rawHeaders` (and the count its parser
  // read) on first read: they are built first, so all three can be edited.
  const { headers, headersDistinct } = req;
  const kept: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (!names.has(raw[i]!.toLowerCase())) kept.push(raw[i]!, raw[i + 1]!);
  req.rawHeaders = kept;
  for (const name of names) {
    delete headers[name];
    delete headersDistinct[name];
  }
}

/**
 * The request fields to send upstream, as a flat `[name, value, …]` list in the client's order.
 * The client's Host is never forwarded nor turned into X-Forwarded-Host: the store keys no Host, so
 * an answer built from it would be served to everyone (`Upstream` sets X-Forwarded-Host from
 * `http[].host`).
 */
export function forwardRequestHeaders(req: IncomingMessage, options: ForwardOptions): string[] {
  const listed = connectionListed(req.headers.connection);
  const raw = req.rawHeaders;
  const out: string[] = [];
  let forwardedFor: string | undefined;
  let via: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || listed?.has(lower) || lower === 'host') continue;
    if (options.unconditional && CONDITIONAL.has(lower)) continue;
    if (options.mode !== 'off' && lower === 'via') {
      via = via === undefined ? raw[i + 1] : `${via}, ${raw[i + 1]}`;
      continue;
    }
    if (options.mode !== 'off' && lower.startsWith('x-forwarded-')) {
      if (options.mode === 'append' && lower === 'x-forwarded-for') {
        forwardedFor = forwardedFor === undefined ? raw[i + 1] : `${forwardedFor}, ${raw[i + 1]}`;
      }
      if (options.mode === 'append' && (lower === 'x-forwarded-proto' || lower === 'x-forwarded-host')) out.push(name, raw[i + 1]!);
      continue;
    }
    out.push(name, raw[i + 1]!);
  }
  out.push('host', options.upstreamHost);
  if (options.mode === 'off') return out;
  const client = req.socket.remoteAddress ?? 'unknown';
  out.push('via', via === undefined ? VIA : `${via}, ${VIA}`);
  out.push('x-forwarded-for', forwardedFor === undefined ? client : `${forwardedFor}, ${client}`);
  if (options.mode === 'replace' || req.headers['x-forwarded-proto'] === undefined) out.push('x-forwarded-proto', 'http');
  return out;
}

/**
 * Sets X-Forwarded-Host to the listener's public host (`http[].host`) in a flat field list, in
 * place of any other; without one the list is returned as it is.
 */
export function withForwardedHost(fields: string[], publicHost: string | undefined): string[] {
  if (publicHost === undefined) return fields;
  const out: string[] = [];
  for (let i = 0; i < fields.length; i += 2) if (fields[i]!.toLowerCase() !== 'x-forwarded-host') out.push(fields[i]!, fields[i + 1]!);
  out.push('x-forwarded-host', publicHost);
  return out;
}

export interface ResponseHeaderOptions {
  /** Lower-case tag header name, removed unless `exposeTags`. */
  tagHeader: string;
  exposeTags: boolean;
  mode: ForwardedMode;
  /** Remove Set-Cookie (the stored copy of a `cacheSetCookie` route). */
  dropSetCookie: boolean;
}

/**
 * The upstream's response fields for a client, as a flat list: hop-by-hop fields, Age (the cache
 * sets its own, RFC 9111 §5.1) and the tag header removed, Via added.
 */
export function clientResponseHeaders(headers: IncomingHttpHeaders, options: ResponseHeaderOptions): string[] {
  const listed = connectionListed(headers.connection);
  const out: string[] = [];
  let via: string | undefined;
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined || HOP_BY_HOP.has(name) || listed?.has(name) || name === 'age') continue;
    if (name === options.tagHeader && !options.exposeTags) continue;
    if (name === 'set-cookie' && options.dropSetCookie) continue;
    if (name === 'via' && options.mode !== 'off') {
      via = Array.isArray(value) ? value.join(', ') : value;
      continue;
    }
    if (Array.isArray(value)) for (const v of value) out.push(name, v);
    else out.push(name, value);
  }
  if (options.mode !== 'off') out.push('via', via === undefined ? VIA : `${via}, ${VIA}`);
  return out;
}

/** Space-separated tags of the tag header (several fields are joined). */
export function readTags(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  const text = Array.isArray(value) ? value.join(' ') : value;
  return text.split(/[\s,]+/).filter((t) => t !== '');
}

/** Bytes a flat header list takes, for the store's accounting. */
export function headerBytes(flat: readonly string[]): number {
  let bytes = 0;
  for (const part of flat) bytes += part.length + 4;
  return bytes;
}
