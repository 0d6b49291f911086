/**
 * The one normal form of a request target (path and query). Shared by the HTTP listener
 * (`upstreams/http/target.ts`) and invalidation messages (`invalidation/message.ts`: `prefixes`),
 * which is why it lives below both. Rules, store keys, URL tags (PURGE, unsafe methods)
 * and the upstream request all use it, so a path spelled another way (`/%70rivate`, `/./private`,
 * `//private`) cannot match one rule and reach another resource, or sit under a key that an
 * invalidation of the same resource does not name.
 *
 * RFC 3986 §6.2.2 (syntax-based normalisation), applied to the path and the query:
 * - percent-encoded unreserved characters (§2.3: `A-Z a-z 0-9 - . _ ~`) are decoded;
 * - other escapes get upper-case hex (`%2f` → `%2F`); a `%` not followed by two hex digits makes
 *   the target malformed (answered 400: origins disagree on what it means);
 * - characters RFC 3986 does not allow in the component are percent-encoded (`"`, `\`, `{`, bytes
 *   over 0x7F, …);
 * Then, in the path only: runs of `/` become one (as nginx's `merge_slashes` and most frameworks
 * read them), and dot segments are removed (§5.2.4). An empty query (`/a?`) is no query.
 */

/** RFC 3986 §2.3. */
const UNRESERVED = /^[A-Za-z0-9\-._~]$/;
/** pchar (unreserved, sub-delims, `:` `@`) and `/`: what a path may hold unescaped (§3.3). */
const PATH_CHAR = /^[A-Za-z0-9\-._~!$&'()*+,;=:@/]$/;
/** A query also holds `?` (§3.4). */
const QUERY_CHAR = /^[A-Za-z0-9\-._~!$&'()*+,;=:@/?]$/;

/**
 * A target already in the normal form, which most are: only characters that stay as they are
 * (no `%`), no `//`, no dot segment, no empty query. Checked with two regular expressions rather
 * than rebuilt character by character on every request.
 */
const NORMAL_TARGET = /^\/[A-Za-z0-9\-._~!$&'()*+,;=:@/]*(?:\?[A-Za-z0-9\-._~!$&'()*+,;=:@/?]+)?$/;
/** In the path: `//`, or a `.`/`..` segment. */
const PATH_TO_REWRITE = /\/\/|\/\.\.?(?:\/|\?|$)/;

/** The normal form of an origin-form target (`/path?query`), or undefined when it is malformed. */
export function normalizeTarget(target: string): string | undefined {
  if (!target.startsWith('/')) return undefined;
  if (NORMAL_TARGET.test(target) && !PATH_TO_REWRITE.test(pathOf(target))) return target;
  return rebuildTarget(target);
}

/** `normalizeTarget` without the check for a target already normal: every step applied (exported for its test). */
export function rebuildTarget(target: string): string | undefined {
  if (!target.startsWith('/')) return undefined;
  const q = target.indexOf('?');
  const rawPath = q === -1 ? target : target.slice(0, q);
  const path = normalizeEscapes(rawPath, PATH_CHAR);
  if (path === undefined) return undefined;
  const normalPath = removeDotSegments(path.replace(/\/{2,}/g, '/'));
  if (q === -1 || q === target.length - 1) return normalPath;
  const query = normalizeEscapes(target.slice(q + 1), QUERY_CHAR);
  return query === undefined ? undefined : `${normalPath}?${query}`;
}

function pathOf(target: string): string {
  const q = target.indexOf('?');
  return q === -1 ? target : target.slice(0, q);
}

function normalizeEscapes(component: string, allowed: RegExp): string | undefined {
  let out = '';
  for (let i = 0; i < component.length; i++) {
    const c = component[i]!;
    if (c === '%') {
      const hex = component.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return undefined;
      const decoded = String.fromCharCode(parseInt(hex, 16));
      out += UNRESERVED.test(decoded) ? decoded : `%${hex.toUpperCase()}`;
      i += 2;
    } else if (allowed.test(c)) {
      out += c;
    } else {
      const code = c.charCodeAt(0);
      // node:http hands the target over byte for byte (latin1); anything wider is not from the wire.
      if (code > 0xff) return undefined;
      out += `%${code.toString(16).toUpperCase().padStart(2, '0')}`;
    }
  }
  return out;
}

/** RFC 3986 §5.2.4 for an absolute path without empty segments but a last one. */
export function removeDotSegments(path: string): string {
  const input = path.split('/').slice(1);
  const out: string[] = [];
  for (let i = 0; i < input.length; i++) {
    const segment = input[i]!;
    if (segment === '.' || segment === '..') {
      if (segment === '..') out.pop();
      // A path ending in a dot segment names a directory: `/a/b/..` is `/a/`.
      if (i === input.length - 1) out.push('');
      continue;
    }
    out.push(segment);
  }
  return `/${out.join('/')}`;
}
