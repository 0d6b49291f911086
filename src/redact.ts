/**
 * Secrets out of text meant for people (log lines, configuration errors): a URL keeps its shape,
 * its password does not.
 */

/** `scheme://user:password@` (RFC 3986 §3.2.1: userinfo ends at the last `@` before the path). */
const USERINFO_PASSWORD = /^([a-z][a-z0-9+.-]*:\/\/[^:/?#@]*:)[^/?#]*@/i;
/** `?password=…` / `&password=…`, as libpq and node-postgres accept it. */
const QUERY_PASSWORD = /([?&]password=)[^&#]*/gi;

/**
 * A URL fit for a log line or an error message: the password (in the userinfo or as a
 * `password` parameter) is replaced by `***`. Text only, no parsing: a URL too broken to parse
 * is shown as broken as it is, minus its password.
 */
export function redactUrl(url: string): string {
  return url.replace(USERINFO_PASSWORD, '$1***@').replace(QUERY_PASSWORD, '$1***');
}
