/** How long the planner trusts what it remembers of the catalog, and how it words a catalog that could not be asked. */
import type { Millis } from '../../units.js';

/** How long a plan is trusted before the catalog is asked again (tables may become views, …). */
export const PLAN_TTL_MS: Millis = 60_000;
export const MEMO_SIZE = 10_000;
/** How long "the catalog could not be asked" stands before it is asked again. */
export const CATALOG_RETRY_MS: Millis = 5_000;
/**
 * How often the memos with a TTL read the clock: lru-cache keeps the time it read for this long
 * and arms a timer each time it reads it. Its default (1 ms) read the clock and armed a timer per
 * memo for nearly every request; the TTLs above are refresh bounds of seconds to an hour, which
 * an answer outliving by up to a second does not change (what DDL and invalidations drop is
 * deleted at once, not left to expire).
 */
export const MEMO_TTL_RESOLUTION_MS: Millis = 1_000;

export function unreachable(err: unknown): string {
  return `the catalog could not be asked (${(err as Error).message})`;
}
