/**
 * Gateway routes that can never match (`sidecache check`): every request such a route matches is
 * taken by an earlier route of the same listener, first match winning. Decided for the forms that
 * can be told apart without enumerating requests; anything else counts as reachable, so a route
 * reported is certainly dead.
 */
import type { Config } from './schema.js';

/** A route that can never match, and the earlier one that takes its requests. */
export interface ShadowedRoute {
  /** Key path of the dead route (`http[0].routes[2]`). */
  path: string;
  /** Key path of the route that takes its requests. */
  by: string;
}

interface Pattern {
  readonly host?: string | undefined;
  readonly path?: string | undefined;
}

export function shadowedRoutes(config: Config): ShadowedRoute[] {
  const out: ShadowedRoute[] = [];
  config.http.forEach((listener, l) => {
    const routes = listener.routes ?? [];
    routes.forEach((later, i) => {
      const by = routes.findIndex((earlier, j) => j < i && covers(earlier, later));
      if (by !== -1) out.push({ path: `http[${l}].routes[${i}]`, by: `http[${l}].routes[${by}]` });
    });
  });
  return out;
}

/** Whether every request `later` matches, `earlier` matches too. */
export function covers(earlier: Pattern, later: Pattern): boolean {
  return hostCovers(earlier.host, later.host) && pathCovers(earlier.path, later.path);
}

/** Lower case, the default port left out (as requests are matched). */
function normalHost(host: string): string {
  return host.toLowerCase().replace(/:80$/, '');
}

function hostnameOf(host: string): string {
  const end = host.startsWith('[') ? host.indexOf(']') + 1 : host.lastIndexOf(':');
  return end <= 0 || end >= host.length ? host : host.slice(0, end);
}

function hostCovers(earlier: string | undefined, later: string | undefined): boolean {
  if (earlier === undefined) return true;
  if (later === undefined) return false;
  const e = normalHost(earlier);
  const l = normalHost(later);
  if (e === l) return true;
  if (e.startsWith('*.')) return (l.startsWith('*.') ? l.slice(1) : hostnameOf(l)).endsWith(e.slice(1));
  // A name without a port matches it on every port.
  return hostnameOf(e) === e && !l.startsWith('*.') && hostnameOf(l) === e;
}

/** `X/**` with no other star: everything below `X/`. */
function isSubtreeGlob(glob: string): boolean {
  return glob.endsWith('/**') && !glob.slice(0, -3).includes('*');
}

/** A prefix route (no star) matches `base` and what lies below `base/`. */
function prefixMatches(prefix: string, path: string): boolean {
  const base = prefix.replace(/\/+$/, '');
  return path === base || path.startsWith(`${base}/`);
}

/**
 * Whether every path `later` matches, `earlier` matches too: no path, prefixes, and globs against
 * their literal prefix (`X/**` covers what lies below `X/`).
 */
function pathCovers(earlier: string | undefined, later: string | undefined): boolean {
  if (earlier === undefined) return true;
  const earlierPrefix = earlier.includes('*') ? undefined : earlier.replace(/\/+$/, '');
  if (later === undefined) return earlierPrefix === '' || earlier === '/**';
  if (earlier === later) return true;
  // Every path `later` matches starts with `literal` (a prefix route: is `base` or lies below it).
  const base = later.includes('*') ? undefined : later.replace(/\/+$/, '');
  const literal = base ?? later.slice(0, later.indexOf('*'));
  if (earlierPrefix !== undefined) return base !== undefined ? prefixMatches(earlier, base) : literal.startsWith(`${earlierPrefix}/`);
  if (!isSubtreeGlob(earlier)) return false;
  return literal.startsWith(earlier.slice(0, -2));
}
