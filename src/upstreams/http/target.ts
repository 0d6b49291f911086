/**
 * Request targets as a listener reads them: origin-form or absolute-form for this listener
 * (RFC 9112 §3.2), put in the one normal form (`cache/paths.ts`), and the lenient readings rules
 * are also matched against.
 */
import { normalizeTarget, removeDotSegments } from '../../cache/paths.js';

export { normalizeTarget };

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
