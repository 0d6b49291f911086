/**
 * Route rules: path globs compiled once and matched first-wins, with the listener's defaults folded
 * in.
 */
import type { Millis } from '../../units.js';
import type { HttpListenerConfig } from '../../config/schema.js';
import { lenientReading } from './target.js';

/** A route rule ready for matching: the glob compiled once, the listener's defaults folded in. */
export interface HttpRoute {
  readonly glob: string;
  readonly cache: boolean;
  /** Freshness that overrides the upstream's, when set. */
  readonly ttlMs: Millis | undefined;
  readonly tags: readonly string[];
  readonly cacheSetCookie: boolean;
  readonly ignoreRequestCacheControl: boolean;
}

interface CompiledRule {
  readonly test: RegExp;
  /** The same glob, ignoring case, for the lenient readings of a path (`target.ts`). */
  readonly lenientTest: RegExp;
  readonly route: HttpRoute;
}

/** The route of paths no rule matches. */
function defaultRoute(ignoreRequestCacheControl: boolean): HttpRoute {
  return { glob: '**', cache: true, ttlMs: undefined, tags: [], cacheSetCookie: false, ignoreRequestCacheControl };
}

/** `*` matches within one path segment, `**` across segments; everything else is literal. */
export function compileGlob(glob: string): RegExp {
  let source = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      source += '.*';
      i++;
    } else if (c === '*') source += '[^/]*';
    else source += c.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

/**
 * First match wins (docs/contracts.md "Configuration"); results are remembered per path, as most APIs repeat paths.
 * Paths are matched in their normal form (`target.ts`), never as the client spelled them.
 */
export class RouteTable {
  readonly #rules: readonly CompiledRule[];
  readonly #default: HttpRoute;
  /** Whether any rule says `cache: false` (only then are lenient readings worth computing). */
  readonly #passThrough: boolean;
  readonly #memo = new Map<string, HttpRoute>();
  /** What the memo accounts for: each path's characters and `MEMO_OVERHEAD`. */
  #memoBytes = 0;

  /**
   * `listener` gives what a rule does not say: `ignoreRequestCacheControl`. `tags` go on every entry
   * (a gateway route's tag, so a reload can drop the entries of a route it removes).
   */
  constructor(rules: HttpListenerConfig['rules'], listener: Pick<HttpListenerConfig, 'ignoreRequestCacheControl'>, tags: readonly string[] = []) {
    this.#default = { ...defaultRoute(listener.ignoreRequestCacheControl), tags };
    this.#rules = rules.map((r) => ({
      test: compileGlob(r.path),
      lenientTest: new RegExp(compileGlob(r.path).source, 'i'),
      route: {
        glob: r.path,
        cache: r.cache,
        ttlMs: r.ttl,
        tags: [...(r.tags ?? []), ...tags],
        cacheSetCookie: r.cacheSetCookie,
        ignoreRequestCacheControl: r.ignoreRequestCacheControl ?? listener.ignoreRequestCacheControl,
      },
    }));
    this.#passThrough = this.#rules.some((r) => !r.route.cache);
  }

  match(path: string): HttpRoute {
    const known = this.#memo.get(path);
    if (known !== undefined) return known;
    const first = this.#rules.find((r) => r.test.test(path))?.route ?? this.#default;
    const route = first.cache && this.#passThrough ? (this.#passThroughReading(path) ?? first) : first;
    // Paths with ids are unbounded, and as long as clients make them; the memo only saves work,
    // so it is simply reset when it would pass its byte limit.
    const bytes = path.length * 2 + MEMO_OVERHEAD;
    if (this.#memoBytes + bytes > MEMO_BYTES) {
      this.#memo.clear();
      this.#memoBytes = 0;
    }
    this.#memo.set(path, route);
    this.#memoBytes += bytes;
    return route;
  }

  /** Whether `route` is the listener's defaults (no rule matched). */
  isDefault(route: HttpRoute): boolean {
    return route === this.#default;
  }

  /** Bytes the memo accounts for now (for tests of the bound). */
  get memoBytes(): number {
    return this.#memoBytes;
  }

  /**
   * Default deny: the `cache: false` rule that the path falls under as a lenient origin may read it
   * (case ignored, or its `lenientReading`), if any. Such a path is passed through, never stored.
   */
  #passThroughReading(path: string): HttpRoute | undefined {
    for (const candidate of [path, lenientReading(path)]) {
      // First match wins here too: a cacheable rule listed before a `cache: false` one keeps its paths.
      const route = this.#rules.find((r) => r.lenientTest.test(candidate))?.route;
      if (route !== undefined && !route.cache) return route;
    }
    return undefined;
  }
}

/** The memo's byte limit per listener (a fixed cost, whatever the traffic). */
const MEMO_BYTES = 1024 * 1024;
/** Heap bytes a memo record costs beyond its path (the Map entry), rounded up. */
const MEMO_OVERHEAD = 64;
