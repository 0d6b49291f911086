/**
 * A statement's cache plan and the rules that make one: whether texts of one shape may share a
 * classification, and the listener's `rules` (by table) applied to a statement that may be cached.
 * The planner (`planner.ts`) finds the relations and checks the calls first.
 */
import type { Millis } from '../../units.js';
import type { PostgresListenerConfig } from '../../config/schema.js';
import { tableTag } from '../../cache/tags.js';
import type { Classification } from './classify.js';

export interface CachePlan {
  cacheable: boolean;
  reason: string | undefined;
  /** `table:<name>` for every relation read, views and partitions resolved, and the server's cluster tag. */
  tags: string[];
  ttlMs: Millis;
}

/**
 * Whether texts of one shape may share `c`: a cacheable SELECT, or a plain write (DML, or DDL that
 * names its tables). What else a statement does may depend on its constants (a SET's value, a
 * function's body, a DO block), and such statements are parsed on their own.
 */
export function isSharedByShape(c: Classification): boolean {
  if (c.cacheable) return true;
  return c.writes.length > 0 && c.session === 'none' && !c.transaction && !c.commits && !c.invalidatesAll && c.dropsDatabase === undefined;
}

/** A plan that does not cache, and why. */
export const no = (reason: string): CachePlan => ({ cacheable: false, reason, tags: [], ttlMs: 0 });

/** Applies the listener's rules (first match by table, names compared as tags are: without schema or case) to a statement that may be cached. */
export function decidePlan(config: PostgresListenerConfig, clusterTag: string, c: Classification, names: string[]): CachePlan {
  if (!c.cacheable) return no(c.reason ?? 'not cacheable');
  const tags = names.map(tableTag);
  const rule = config.rules.find((r) => r.tables.some((t) => tags.includes(tableTag(t))));
  if (rule !== undefined && !rule.cache) return no(`rule for ${rule.tables.join(', ')} says cache: false`);
  return { cacheable: true, reason: undefined, tags: [...tags, clusterTag], ttlMs: rule?.ttl ?? config.defaultTtl };
}
