/** Sorting a failure to ask the catalog by what an operator would do about it, and the advice for each. */
import { UNSUPPORTED_SERVER } from './server-versions.js';

/** Why the catalog could not be asked, as the metric's `reason` label. */
export type CatalogErrorReason = 'authentication' | 'permission' | 'unreachable' | 'timeout' | 'version' | 'other';

/** Sorts a catalog failure by what an operator would do about it. */
export function catalogErrorReason(err: unknown): CatalogErrorReason {
  const { code, message } = err as { code?: string; message?: string };
  if (code === UNSUPPORTED_SERVER) return 'version';
  // 28000 invalid_authorization_specification, 28P01 invalid_password; node-postgres's own SASL/password errors.
  if (code === '28000' || code === '28P01' || /password|SASL/i.test(message ?? '')) return 'authentication';
  if (code === '42501') return 'permission';
  // 57014 query_canceled (statement_timeout), 55P03 lock_not_available (lock_timeout).
  if (code === '57014' || code === '55P03' || /timeout/i.test(message ?? '')) return 'timeout';
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH' || code === 'ECONNRESET' || code === '3D000' || code === '57P03')
    return 'unreachable';
  return 'other';
}

/** What to do about a catalog failure, for the warning. */
export const CATALOG_FIX: Record<CatalogErrorReason, string> = {
  authentication:
    'the upstream asks for a password the catalog connection does not have: set postgres[].catalogUrl to a URL with a user and password allowed to read pg_catalog',
  permission: 'grant the catalog identity (postgres[].catalogUrl, or the client user) access to pg_catalog and the tables it reads',
  unreachable: 'check that postgres[].catalogUrl (or upstream) reaches a running server and database',
  timeout: 'the catalog answered too slowly; check the server load',
  version: 'upgrade PostgreSQL: sidecache reads the catalog of 13 and later; statements are passed through uncached meanwhile',
  other: 'see the error; statements are passed through uncached meanwhile',
};
