/**
 * The one normal form of a request target. Rules, store keys, URL tags (PURGE, unsafe methods)
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

/** The normal form of an origin-form target (`/path?query`), or undefined when it is malformed. */
export function normalizeTarget(target: string): string | undefined {
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

/**
 * The origin-form target of a request target: itself when it starts with `/`, the path and query
 * of an absolute-form `http://` target whose authority `isOwn` accepts (RFC 9112 §3.2.2), and
 * undefined for anything else (another authority, `*`, a malformed URL).
 */
export function originForm(target: string, isOwn: (host: string) => boolean): string | undefined {
  if (target.startsWith('/')) return target;
  const scheme = /^http:\/\//i.exec(target);
  if (scheme === null) return undefined;
  const rest = target.slice(scheme[0].length);
  const end = rest.search(/[/?]/);
  const authority = end === -1 ? rest : rest.slice(0, end);
  const host = hostOf(authority);
  if (host === undefined || !isOwn(host)) return undefined;
  const pathAndQuery = end === -1 ? '/' : rest.slice(end);
  return pathAndQuery.startsWith('?') ? `/${pathAndQuery}` : pathAndQuery;
}

/** `host[:port]` as WHATWG URL spells it for `http:` (lower case, default port left out); undefined when it is not one. */
export function hostOf(authority: string): string | undefined {
  if (authority === '' || authority.includes('@')) return undefined;
  try {
    const url = new URL(`http://${authority}/`);
    return url.pathname === '/' && url.search === '' ? url.host : undefined;
  } catch {
    // Not an authority new URL accepts: the target is refused.
    return undefined;
  }
}

/**
 * How a lenient origin may read a normal path, although RFC 3986 does not: every escape decoded
 * (`%2F` as `/`, and up to three times, for origins that decode twice), `\` as `/`, path
 * parameters (`;jsessionid=…`) dropped, then slashes merged and dot segments removed again. Rules
 * are also matched against this reading, ignoring case (IIS and other case-insensitive origins):
 * a path that any of these readings puts under a `cache: false` rule is passed through.
 */
export function lenientReading(path: string): string {
  let p = path;
  for (let i = 0; i < 3; i++) {
    const decoded = p.replace(/%([0-9A-Fa-f]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
    if (decoded === p) break;
    p = decoded;
  }
  p = `/${p.replace(/\\/g, '/').replace(/;[^/]*/g, '')}`;
  return removeDotSegments(p.replace(/\/{2,}/g, '/'));
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
function removeDotSegments(path: string): string {
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
