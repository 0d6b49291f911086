/**
 * An HTTP store key read back for people (`GET /cache/entries`, `GET /cache/explain`): listener,
 * URL and the Vary fields `key.ts` wrote. Query strings and field values can carry tokens and
 * personal data: without `reveal`, the URL is its path and the fields are their names.
 */

/** What one HTTP key holds, readable. */
export interface HttpKeyDescription {
  protocol: 'http';
  listener: string;
  /** The gateway route whose namespace holds the key (`http[].routes`), on gateway listeners only. */
  route?: string;
  /** The path (and, with `reveal`, the query) in its normal form. */
  url: string;
  /** Whether a query was left out. */
  queryHidden?: true;
  /** The request fields the response's `Vary` named: values with `reveal`, else names; null for a field the request lacked. */
  vary?: Record<string, string | null> | string[];
}

/** `url` without its query unless `reveal`, and whether one was left out. */
export function shownUrl(url: string, reveal: boolean): { url: string; queryHidden?: true } {
  const q = url.indexOf('?');
  return reveal || q === -1 ? { url } : { url: url.slice(0, q), queryHidden: true };
}

/** The description of an HTTP key (`baseKey`/`variantKey`), or undefined when `key` is not one. */
export function describeHttpKey(key: string, reveal: boolean): HttpKeyDescription | undefined {
  const parts = key.split('\u0000');
  if (parts[0] !== 'http' || parts.length < 3) return undefined;
  // A gateway route's namespace is `listener NUL route NUL digest` (routes.ts); a URL starts with `/`.
  const route = parts[2]!.startsWith('/') ? undefined : parts.splice(2, 2)[0];
  if (parts.length < 3) return undefined;
  const [, listener, url, ...fields] = parts as [string, string, string, ...string[]];
  const description: HttpKeyDescription = { protocol: 'http', listener, ...(route !== undefined && { route }), ...shownUrl(url, reveal) };
  if (fields.length > 0) {
    if (!reveal) description.vary = fields.map((f) => f.split('=')[0]!);
    else {
      const vary: Record<string, string | null> = {};
      for (const f of fields) {
        const eq = f.indexOf('=');
        if (eq === -1) vary[f] = null;
        else vary[f.slice(0, eq)] = f.slice(eq + 1);
      }
      description.vary = vary;
    }
  }
  return description;
}
