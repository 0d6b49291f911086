/**
 * Store keys of HTTP entries: one per URL, and one per Vary variant.
 */
import type { IncomingHttpHeaders } from 'node:http';

/**
 * Store keys of HTTP entries. The base key names the listener, the method family and the URL
 * (path and query) in its normal form (`target.ts`: the listener normalises every target on
 * arrival, and the upstream is asked for that same form); a variant key adds the values of the request fields the
 * response's `Vary` nominated (RFC 9111 §4.1). NUL separates parts: it cannot occur in a URL or
 * a field value.
 */
export function baseKey(listener: string, url: string): string {
  return `http\u0000${listener}\u0000${url}`;
}

/**
 * The variant key for `names` (lower-case field names, in the stored response's order). A field
 * the request lacks is written as its bare name, one it sends empty as `name=`: RFC 9111 §4.1
 * matches a nominated field only when it is absent from both requests or present in both, so an
 * empty `X-Tenant:` must not be answered with the response to a request without one.
 */
export function variantKey(base: string, names: readonly string[], headers: IncomingHttpHeaders): string {
  let key = base;
  for (const name of names) {
    const value = headers[name];
    key += value === undefined ? `\u0000${name}` : `\u0000${name}=${normalizeField(value)}`;
  }
  return key;
}

/** RFC 9111 §4.1: values are compared after combining fields and normalizing whitespace. */
function normalizeField(value: string | string[]): string {
  const text = Array.isArray(value) ? value.join(', ') : value;
  return text
    .trim()
    .replace(/\s*,\s*/g, ', ')
    .replace(/\s+/g, ' ');
}
