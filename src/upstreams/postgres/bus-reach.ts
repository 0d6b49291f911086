/**
 * What a table named by a bus message reaches, as a write seen on the wire reaches it
 * (write-reach.ts): a partition's parents, a parent's partitions, views over any of them, tables
 * whose foreign keys cascade from it. A WAL bus names the partition a row went to and a NOTIFY
 * trigger the table it fired on, while a read may have named the parent or a view.
 */
import { databaseTag, tableTag } from '../../cache/tags.js';
import type { Catalog } from './catalog.js';
import type { Planner } from './planner.js';

const TABLE = tableTag('');

/**
 * Asks, for every database the planner has seen, what the `table:` tags reach, and hands the
 * answer to `invalidate` (the database's tag when the catalog cannot tell: when unsure, drop).
 * Until that is applied, plans of the database wait (as after a write whose reach is asked), so no
 * read is answered from an entry of a parent or view the message made stale.
 */
export function busReach(catalog: Catalog, planner: Planner, tables: readonly string[], invalidate: (tags: string[]) => void): void {
  const refs = tables.filter((t) => t.startsWith(TABLE)).map((t) => ({ schema: undefined, name: t.slice(TABLE.length) }));
  if (refs.length === 0) return;
  for (const [database, user] of planner.databases) {
    const applied = catalog.writeReach(database, user, refs, false).then(
      (reach) => invalidate(reach.names.map(tableTag)),
      () => invalidate([databaseTag(database)]),
    );
    planner.writes.holdUntil(database, applied);
  }
}
