/**
 * Gateway route matching (`http[].routes`), prepared once when the routes are loaded: exact hosts
 * in a Map, wildcard hosts by suffix, path prefixes and globs compiled. A request costs one or two
 * Map lookups (a few more for a host under a wildcard) and a walk of the compiled paths of the
 * routes that host may reach, first match wins, as nginx's `server_name` then `location`.
 */
import { LRUCache } from 'lru-cache';
import { compileGlob } from './rules.js';
import { hostOf, lenientReading } from './target.js';

/** A route's `path`, compiled: what it matches, and the client prefix its upstream's path replaces. */
export interface CompiledPath {
  test(path: string): boolean;
  /** The literal prefix the upstream URL's path takes the place of (`/billing/**` → `/billing`). */
  readonly strip: string;
}

/** What a route is matched on (`http[].routes[]`). */
export interface RoutePattern {
  readonly host?: string | undefined;
  readonly path?: string | undefined;
}

/**
 * A route's `path`: absent matches every path; with `*`, a glob (`*` within a segment, `**` across,
 * as rules); otherwise a prefix that matches itself and what lies below it (`/billing` matches
 * `/billing` and `/billing/x`, never `/billingx`).
 */
export function compileRoutePath(path: string | undefined): CompiledPath {
  if (path === undefined) return { test: () => true, strip: '' };
  const star = path.indexOf('*');
  if (star !== -1) {
    const regex = compileGlob(path);
    const literal = path.slice(0, star);
    return { test: (p) => regex.test(p), strip: literal.slice(0, literal.lastIndexOf('/')) };
  }
  const base = path.replace(/\/+$/, '');
  const below = `${base}/`;
  return { test: (p) => p === base || p.startsWith(below), strip: base };
}

/** `host[:port]` (as `hostOf` spells it) without its port. */
export function hostnameOf(host: string): string {
  const end = host.startsWith('[') ? host.indexOf(']') + 1 : host.lastIndexOf(':');
  return end <= 0 || end >= host.length ? host : host.slice(0, end);
}

interface Candidate<T> {
  readonly index: number;
  readonly path: CompiledPath;
  readonly value: T;
}

/** The routes of a gateway listener, ready for matching. */
export class RouteMatcher<T> {
  /** Exact host (`api.example.com`, or with a port) → the routes a request for it may reach, in order. */
  readonly #exact = new Map<string, readonly Candidate<T>[]>();
  /** `.example.com` (of `*.example.com`) → the routes a host below it may reach, in order. */
  readonly #wildcards = new Map<string, readonly Candidate<T>[]>();
  /** Routes without a host: all a request for a host no route names may reach. */
  readonly #anyHost: readonly Candidate<T>[];
  /** The candidates of each host seen lately: a gateway sees few names, each looked up once (bounded against a client sending a new Host each time). */
  readonly #byHost = new LRUCache<string, readonly Candidate<T>[]>({ max: 1024 });

  constructor(routes: readonly (RoutePattern & { readonly value: T })[]) {
    const all = routes.map((r, index) => ({
      index,
      host: r.host === undefined ? undefined : normalHost(r.host),
      path: compileRoutePath(r.path),
      value: r.value,
    }));
    this.#anyHost = all.filter((r) => r.host === undefined);
    const reach = (accepts: (host: string) => boolean) => all.filter((r) => r.host === undefined || accepts(r.host));
    for (const { host } of all) {
      if (host === undefined) continue;
      if (host.startsWith('*.')) {
        const suffix = host.slice(1);
        // Every pattern a name below `suffix` matches: this one and the wildcards of shorter suffixes.
        this.#wildcards.set(
          suffix,
          reach((h) => h.startsWith('*.') && suffix.endsWith(h.slice(1))),
        );
      } else {
        const name = hostnameOf(host);
        this.#exact.set(
          host,
          reach((h) => h === host || h === name || (h.startsWith('*.') && name.endsWith(h.slice(1)))),
        );
      }
    }
  }

  /** The first route whose host and path match; undefined when none does. `host` as `hostOf` spells it, undefined when the request named none. */
  match(host: string | undefined, path: string): T | undefined {
    // Default deny: a path a lenient upstream may read as one outside the route (`/billing/..%2Fadmin`
    // is `/admin` to an origin that decodes `%2F`) does not take that route.
    const lenient = /[%\\;]/.test(path) ? lenientReading(path) : undefined;
    for (const candidate of this.#candidates(host)) {
      if (candidate.path.test(path) && (lenient === undefined || candidate.path.test(lenient))) return candidate.value;
    }
    return undefined;
  }

  /** Whether some route names `host` (exactly or by a wildcard), for `knownHostsOnly`. */
  knows(host: string | undefined): boolean {
    return host !== undefined && this.#named(host) !== undefined;
  }

  #candidates(host: string | undefined): readonly Candidate<T>[] {
    if (host === undefined) return this.#anyHost;
    let list = this.#byHost.get(host);
    if (list === undefined) {
      list = this.#named(host) ?? this.#anyHost;
      this.#byHost.set(host, list);
    }
    return list;
  }

  #named(host: string): readonly Candidate<T>[] | undefined {
    const exact = this.#exact.get(host);
    if (exact !== undefined) return exact;
    const name = hostnameOf(host);
    const byName = name === host ? undefined : this.#exact.get(name);
    if (byName !== undefined) return byName;
    // Longest suffix first: its list already holds the wildcards of the shorter ones.
    for (let dot = name.indexOf('.'); dot !== -1; dot = name.indexOf('.', dot + 1)) {
      const list = this.#wildcards.get(name.slice(dot));
      if (list !== undefined) return list;
    }
    return undefined;
  }
}

/** A configured host as `hostOf` spells a request's (lower case, default port left out). */
function normalHost(host: string): string {
  if (host.startsWith('*.')) return host.toLowerCase();
  return hostOf(host) ?? host.toLowerCase();
}
