/**
 * SQL that makes PostgreSQL publish invalidations for writes that do not pass through sidecache:
 * statement-level triggers that `pg_notify` the table's name
 * (https://www.postgresql.org/docs/current/sql-createtrigger.html), and an event trigger that
 * asks for a full flush after DDL (https://www.postgresql.org/docs/current/event-triggers.html).
 * NOTIFY is delivered at commit, so an invalidation never overtakes the write it announces.
 */

export interface TriggerOptions {
  channel: string;
  /** Tables to cover; empty with `allTables` for every table of `schema`. */
  tables: readonly string[];
  allTables: boolean;
  schema: string;
  /** Also notify on DDL (needs superuser to install). */
  ddl: boolean;
}

const FUNCTION = 'sidecache_notify';
const TRIGGER = 'sidecache_notify';
const DDL_FUNCTION = 'sidecache_notify_ddl';

function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function literal(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

function qualified(schema: string, table: string): string {
  const [s, t] = table.includes('.') ? (table.split('.', 2) as [string, string]) : [schema, table];
  return `${ident(s)}.${ident(t)}`;
}

/** The trigger function: one NOTIFY per statement, payload the table's name (the message contract's table list). */
function notifyFunction(schema: string): string {
  return `CREATE OR REPLACE FUNCTION ${ident(schema)}.${FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $sidecache$
BEGIN
  PERFORM pg_notify(TG_ARGV[0], TG_TABLE_NAME);
  RETURN NULL;
END
$sidecache$;`;
}

/** The CREATE TRIGGER of one relation, for `format()` with the relation as `%s` (a regclass, quoted as needed). */
function createTrigger(schema: string): string {
  return `'CREATE TRIGGER ${TRIGGER} AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION ${ident(schema).replace(/'/g, "''")}.${FUNCTION}(%L)'`;
}

/**
 * Covers the table and, when it is partitioned, every partition (pg_partition_tree, PostgreSQL 12+):
 * a statement-level trigger fires only on the table a statement names, so a write made directly
 * to a partition is seen only by the partition's own trigger (its payload names the partition;
 * sidecache expands it to the parent and views through the catalog).
 */
function triggerOn(table: string, schema: string, channel: string): string {
  return `DO $sidecache$
DECLARE t regclass;
BEGIN
  -- pg_partition_tree lists nothing for a table that is not partitioned: the table itself comes first.
  FOR t IN SELECT ${literal(qualified(schema, table))}::regclass UNION SELECT relid FROM pg_catalog.pg_partition_tree(${literal(qualified(schema, table))}::regclass) LOOP
    EXECUTE format('DROP TRIGGER IF EXISTS ${TRIGGER} ON %s', t);
    EXECUTE format(${createTrigger(schema)}, t, ${literal(channel)});
  END LOOP;
END
$sidecache$;`;
}

/** Covers every ordinary and partitioned table of the schema at install time, partitions included (see triggerOn). */
function triggerOnAll(schema: string, channel: string): string {
  return `DO $sidecache$
DECLARE t regclass;
BEGIN
  FOR t IN SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = ${literal(schema)} AND c.relkind IN ('r', 'p') LOOP
    EXECUTE format('DROP TRIGGER IF EXISTS ${TRIGGER} ON %s', t);
    EXECUTE format(${createTrigger(schema)}, t, ${literal(channel)});
  END LOOP;
END
$sidecache$;`;
}

/** Event triggers take no arguments: the function and the triggers are named after the channel. */
function ddlName(channel: string): string {
  return `${DDL_FUNCTION}_${channel.toLowerCase()}`;
}

/** After DDL the safe answer is a full flush: `{"all":true}`. Event triggers cover the whole database. */
function ddlTrigger(schema: string, channel: string): string {
  const name = ddlName(channel);
  return `CREATE OR REPLACE FUNCTION ${ident(schema)}.${name}() RETURNS event_trigger LANGUAGE plpgsql AS $sidecache$
BEGIN
  PERFORM pg_notify(${literal(channel)}, '{"all":true}');
END
$sidecache$;
DROP EVENT TRIGGER IF EXISTS ${name};
CREATE EVENT TRIGGER ${name} ON ddl_command_end EXECUTE FUNCTION ${ident(schema)}.${name}();
DROP EVENT TRIGGER IF EXISTS ${name}_drop;
CREATE EVENT TRIGGER ${name}_drop ON sql_drop EXECUTE FUNCTION ${ident(schema)}.${name}();`;
}

export function installSql(options: TriggerOptions): string {
  const parts = ['BEGIN;', notifyFunction(options.schema)];
  if (options.allTables) parts.push(triggerOnAll(options.schema, options.channel));
  for (const table of options.tables) parts.push(triggerOn(table, options.schema, options.channel));
  if (options.ddl) parts.push(ddlTrigger(options.schema, options.channel));
  parts.push('COMMIT;');
  return `-- sidecache: publish invalidations on channel ${options.channel}\n${parts.join('\n')}\n`;
}

export function uninstallSql(options: TriggerOptions): string {
  const parts = ['BEGIN;'];
  if (options.ddl) {
    const name = ddlName(options.channel);
    parts.push(
      `DROP EVENT TRIGGER IF EXISTS ${name};`,
      `DROP EVENT TRIGGER IF EXISTS ${name}_drop;`,
      `DROP FUNCTION IF EXISTS ${ident(options.schema)}.${name}();`,
    );
  }
  // Dropping the function with CASCADE removes every table trigger of the schema that uses it.
  parts.push(`DROP FUNCTION IF EXISTS ${ident(options.schema)}.${FUNCTION}() CASCADE;`, 'COMMIT;');
  return `-- sidecache: remove the invalidation triggers\n${parts.join('\n')}\n`;
}
