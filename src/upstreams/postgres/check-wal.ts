/**
 * `sidecache check --connect` for `invalidation[]` entries of type postgres-wal: logs in as the
 * bus does (its URL) and says what logical replication still needs on that server, with the SQL
 * that provides it: https://www.postgresql.org/docs/current/logical-replication-config.html
 */
import pg from 'pg';
import type { BusConfig } from '../../config/schema.js';
import { parsePgUrl } from '../../config/pg-url.js';

type WalBusConfig = Extract<BusConfig, { type: 'postgres-wal' }>;

/** Ordinary tables (partitions too) whose UPDATE and DELETE a publication of them makes fail: they have no replica identity. */
const WITHOUT_REPLICA_IDENTITY = `
SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) AS name
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND c.relpersistence = 'p' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
  AND ($1::text[] IS NULL OR c.oid IN (SELECT r.name::regclass FROM unnest($1::text[]) AS r(name)
                                       UNION SELECT t.relid FROM unnest($1::text[]) AS r(name), pg_catalog.pg_partition_tree(r.name::regclass) AS t))
  AND (c.relreplident = 'n' OR (c.relreplident = 'd' AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)))
ORDER BY 1`;

/**
 * Ordinary tables (partitions too, covered when they or an ancestor are published; pg_partition_ancestors
 * gives nothing for a table that is not a partition, so the table itself is asked too) that `$2` (the
 * bus's `tables`, or every table when null) names but publication `$1` does not publish: writes to
 * them never reach the bus.
 */
const UNPUBLISHED = `
SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) AS name
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND c.relpersistence = 'p' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
  AND ($2::text[] IS NULL OR c.oid IN (SELECT r.name::regclass FROM unnest($2::text[]) AS r(name)
                                       UNION SELECT t.relid FROM unnest($2::text[]) AS r(name), pg_catalog.pg_partition_tree(r.name::regclass) AS t))
  AND NOT EXISTS (SELECT 1 FROM (SELECT c.oid AS relid UNION SELECT relid FROM pg_catalog.pg_partition_ancestors(c.oid)) AS a
                  JOIN pg_catalog.pg_class ac ON ac.oid = a.relid JOIN pg_catalog.pg_namespace an ON an.oid = ac.relnamespace
                  JOIN pg_catalog.pg_publication_tables pt ON pt.pubname = $1 AND pt.schemaname = an.nspname AND pt.tablename = ac.relname)
ORDER BY 1`;

/**
 * Whether the role may run `pg_logical_emit_message(boolean, text, bytea)`, the call a publishing
 * WAL bus makes (PostgreSQL grants EXECUTE to PUBLIC unless a DBA revoked it; 17+ adds a `flush`
 * argument, so the function is found by its first three argument types).
 */
const CAN_EMIT = `
SELECT p.oid::pg_catalog.regprocedure::text AS signature,
       pg_catalog.has_function_privilege(p.oid, 'EXECUTE') AS can
FROM pg_catalog.pg_proc p
WHERE p.proname = 'pg_logical_emit_message' AND p.pronamespace = 'pg_catalog'::regnamespace AND p.proargtypes[2] = 'bytea'::regtype`;

function ident(name: string): string {
  return pg.escapeIdentifier(name);
}

/**
 * A publishing bus (`publish: true`) writes each local invalidation into the WAL as a logical
 * decoding message: pgoutput carries them from PostgreSQL 14 on, and the role needs EXECUTE on
 * the function (https://www.postgresql.org/docs/current/functions-admin.html#FUNCTIONS-REPLICATION).
 */
async function checkPublish(client: pg.Client, role: string, missing: (what: string, fix: string) => void, print: (line: string) => void): Promise<void> {
  const version = Number((await client.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`)).rows[0]!.v);
  const emit = (await client.query<{ signature: string; can: boolean }>(CAN_EMIT)).rows[0];
  if (version < 140_000)
    missing(
      `publish: PostgreSQL ${Math.floor(version / 10_000)} cannot carry invalidations on the replication stream (pgoutput sends logical decoding messages from 14 on)`,
      'set publish: false on this bus and publish on a postgres or redis bus beside it, or upgrade PostgreSQL',
    );
  else if (emit?.can === true) print(`  publish: may emit logical decoding messages (pg_logical_emit_message)`);
  else
    missing(
      `publish: role ${role} may not execute pg_logical_emit_message`,
      `GRANT EXECUTE ON FUNCTION pg_catalog.${emit?.signature ?? 'pg_logical_emit_message(boolean,text,bytea)'} TO ${ident(role)}; (or set publish: false on this bus)`,
    );
}

/** Checks one WAL bus, printing each finding and its fix; true when the bus can stream (and, with `publish`, publish). */
export async function checkWalBus(bus: WalBusConfig, print: (line: string) => void): Promise<boolean> {
  const url = parsePgUrl(bus.url);
  const where = `${url.host ?? ''}:${url.port ?? 5432}/${url.database ?? ''}, user "${url.user ?? ''}"`;
  print(`invalidation[postgres-wal]: ${where}, publication "${bus.publication}"${bus.slot === undefined ? ', temporary slot' : `, slot "${bus.slot}"`}`);
  const client = new pg.Client({ connectionString: bus.url, connectionTimeoutMillis: 5_000, query_timeout: 5_000, application_name: 'sidecache check' });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    print(`  connection: failed: ${(err as Error).message}; check the URL and the pg_hba.conf line it matches`);
    return false;
  }
  let ok = true;
  const missing = (what: string, fix: string): void => {
    ok = false;
    print(`  ${what}; fix: ${fix}`);
  };
  try {
    const level = (await client.query<{ wal_level: string }>('SHOW wal_level')).rows[0]!.wal_level;
    if (level === 'logical') print('  wal_level: logical');
    else missing(`wal_level: ${level}, logical decoding needs logical`, 'ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL');
    const role = (
      await client.query<{ rolname: string; can: boolean }>(
        'SELECT rolname, rolreplication OR rolsuper AS can FROM pg_catalog.pg_roles WHERE rolname = current_user',
      )
    ).rows[0]!;
    if (role.can) print(`  role ${role.rolname}: may replicate`);
    else missing(`role ${role.rolname}: no REPLICATION attribute`, `ALTER ROLE ${ident(role.rolname)} REPLICATION;`);
    if (bus.publish) await checkPublish(client, role.rolname, missing, print);
    const tables = bus.tables.length === 0 ? null : bus.tables;
    const what = tables === null ? 'ALL TABLES' : `TABLE ${tables.join(', ')}`;
    const pub = (await client.query<{ puballtables: boolean }>('SELECT puballtables FROM pg_catalog.pg_publication WHERE pubname = $1', [bus.publication]))
      .rows[0];
    const outside =
      pub === undefined || pub.puballtables ? [] : (await client.query<{ name: string }>(UNPUBLISHED, [bus.publication, tables])).rows.map((r) => r.name);
    if (outside.length > 0)
      missing(
        `publication ${bus.publication}: does not publish ${outside.slice(0, 20).join(', ')}${outside.length > 20 ? ', …' : ''} (writes to them never reach sidecache)`,
        `ALTER PUBLICATION ${ident(bus.publication)} ADD TABLE ${outside.slice(0, 20).join(', ')};`,
      );
    else if (pub !== undefined)
      print(`  publication ${bus.publication}: exists${pub.puballtables ? ' (all tables)' : ` (covers ${tables === null ? 'every table' : 'the tables'})`}`);
    else if (bus.createPublication)
      print(
        `  publication ${bus.publication}: missing; sidecache creates it (createPublication: true): CREATE PUBLICATION ${ident(bus.publication)} FOR ${what};`,
      );
    else missing(`publication ${bus.publication}: missing`, `CREATE PUBLICATION ${ident(bus.publication)} FOR ${what};`);
    const bare = (await client.query<{ name: string }>(WITHOUT_REPLICA_IDENTITY, [tables])).rows.map((r) => r.name);
    if (bare.length > 0) {
      const which = pub === undefined ? 'would fail once the publication exists' : 'fail while they are published';
      print(`  tables without a replica identity: UPDATE and DELETE on them ${which}: ${bare.slice(0, 20).join(', ')}${bare.length > 20 ? ', …' : ''}`);
      print(
        `    fix: give each a primary key, or: ${bare
          .slice(0, 3)
          .map((t) => `ALTER TABLE ${t} REPLICA IDENTITY FULL;`)
          .join(' ')}${bare.length > 3 ? ' …' : ''}`,
      );
      if (pub === undefined) ok = false;
    }
    if (bus.slot !== undefined) {
      const slot = (
        await client.query<{ plugin: string | null; database: string | null }>(
          'SELECT plugin, database FROM pg_catalog.pg_replication_slots WHERE slot_name = $1',
          [bus.slot],
        )
      ).rows[0];
      if (slot === undefined) print(`  slot ${bus.slot}: missing; sidecache creates it (it then retains WAL until sidecache confirms it)`);
      else if (slot.plugin !== 'pgoutput')
        missing(`slot ${bus.slot}: exists with plugin ${slot.plugin ?? 'none (physical)'}`, `SELECT pg_drop_replication_slot('${bus.slot}');`);
      else print(`  slot ${bus.slot}: exists (pgoutput, database ${slot.database ?? '?'})`);
    }
  } catch (err) {
    missing(`the checks failed: ${(err as Error).message}`, 'see the error');
  } finally {
    await client.end().catch(() => undefined);
  }
  print(
    ok
      ? `  verdict: the bus can stream committed writes${bus.publish ? " and carry this instance's invalidations" : ''}`
      : '  verdict: the bus is not ready yet: apply the fixes above',
  );
  return ok;
}
