/**
 * The publication a postgres-wal bus reads. Publishing UPDATE and DELETE of a table makes
 * PostgreSQL refuse those statements on it unless it has a replica identity (a primary key, or
 * REPLICA IDENTITY FULL / USING INDEX): https://www.postgresql.org/docs/current/logical-replication-publication.html
 * So sidecache creates a publication only when asked (`createPublication`) and only when no table
 * it would cover lacks one: a cache must never make an application's writes fail.
 */
import pg from 'pg';

/** `CREATE PUBLICATION` for `tables` (as written in the configuration), or FOR ALL TABLES when there are none. */
export function publicationSql(publication: string, tables: readonly string[]): string {
  const what = tables.length === 0 ? 'ALL TABLES' : `TABLE ${tables.join(', ')}`;
  return `CREATE PUBLICATION ${pg.escapeIdentifier(publication)} FOR ${what}`;
}

/**
 * Ordinary tables of `tables` and their partitions (pg_partition_tree lists nothing for a table
 * that is not partitioned, hence the tables themselves too), or of the whole
 * database, whose UPDATE and DELETE a publication would make fail: no replica identity.
 */
export function withoutReplicaIdentitySql(tables: readonly string[]): string {
  const scope =
    tables.length === 0
      ? `n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'`
      : `c.oid IN (SELECT r.oid FROM unnest(ARRAY[${tables.map((t) => `${pg.escapeLiteral(t)}::regclass`).join(', ')}]) AS r(oid) UNION SELECT t.relid FROM unnest(ARRAY[${tables.map((t) => `${pg.escapeLiteral(t)}::regclass`).join(', ')}]) AS r(oid), pg_catalog.pg_partition_tree(r.oid) AS t)`;
  return `SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) AS name
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND c.relpersistence = 'p' AND ${scope}
  AND (c.relreplident = 'n' OR (c.relreplident = 'd' AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)))
ORDER BY 1`;
}

/**
 * Makes sure the publication exists: creates it when missing and allowed, else fails with the
 * SQL an operator runs (the replication connection takes the simple query protocol only: literals, no parameters).
 */
export async function ensurePublication(client: pg.Client, publication: string, tables: readonly string[], create: boolean): Promise<void> {
  const found = await client.query(`SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = ${pg.escapeLiteral(publication)}`);
  if (found.rows.length > 0) return;
  const sql = publicationSql(publication, tables);
  if (!create) throw new Error(`the publication ${publication} does not exist; create it (see sidecache check --connect): ${sql}`);
  const { rows } = await client.query<{ name: string }>(withoutReplicaIdentitySql(tables));
  if (rows.length > 0) {
    const names = rows.slice(0, 10).map((r) => r.name);
    throw new Error(
      `the publication ${publication} is not created: UPDATE and DELETE would then fail on tables without a replica identity (${names.join(', ')}${rows.length > 10 ? ', …' : ''}); give them a primary key or ALTER TABLE … REPLICA IDENTITY FULL, then: ${sql}`,
    );
  }
  await client.query(sql);
}
