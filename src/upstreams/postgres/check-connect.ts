/**
 * `sidecache check --connect`: for each PostgreSQL listener, logs in to its upstream as one user the
 * way a client's session through the listener reaches it (the same host, port, sslmode and TLS
 * files), and asks the catalog the questions sidecache asks, so an operator learns before any
 * traffic whether reads will be cached for that user and database, and if not, why and what to do.
 */
import net from 'node:net';
import os from 'node:os';
import pg from 'pg';
import { parsePgUrl } from '../../config/pg-url.js';
import type { BusConfig, PostgresListenerConfig } from '../../config/schema.js';
import { checkWalBus } from './check-wal.js';
import { CATALOG_FIX, type CatalogErrorReason, catalogErrorReason } from './catalog-errors.js';
import { BUILTINS, MISSING, USER_OBJECTS } from './catalog-queries.js';
import { OLDEST_SUPPORTED, serverSupport } from './server-versions.js';
import { connectUpstream, type UpstreamTarget, upstreamTarget } from './upstream-socket.js';

/** Who to log in as; what is not given comes from the listener's upstream URL, then libpq's defaults. */
export interface CheckCredentials {
  user?: string | undefined;
  database?: string | undefined;
  /** From --password-file or PGPASSWORD; never from the command line. */
  password?: string | undefined;
}

/** The catalog answers a session's first statement waits on: a client-side bound, as the catalog's statement_timeout is. */
const QUERY_TIMEOUT_MS = 5_000;

/** What the check found for one listener. */
export interface ListenerVerdict {
  listener: string;
  user: string;
  database: string;
  /** Reads will be cached for this user and database. */
  cacheable: boolean;
  /** Rule tables (as `rules[].tables` spells them) that name no relation of the database. */
  missingTables: string[];
}

/** `[schema.]name` of `rules[].tables` as MISSING's $1 (schemas) and $2 (names): quotes dropped, case compared by the query. */
function missingParams(tables: readonly string[]): [(string | null)[], string[]] {
  const refs = tables.map((t) => {
    const parts = t.split('.').map((p) => p.replace(/^"|"$/g, ''));
    return { schema: parts.length > 1 ? parts.at(-2)! : null, name: parts.at(-1)! };
  });
  return [refs.map((r) => r.schema), refs.map((r) => r.name)];
}

/** What to do when the user's own login fails: the client would fail the same way through the listener. */
const CONNECT_FIX: Record<CatalogErrorReason, string> = {
  authentication: 'check the user and password (PGPASSWORD or --password-file) and the pg_hba.conf line they match',
  permission: 'grant the user CONNECT on the database',
  unreachable: 'check that postgres[].upstream reaches a running server and that the database exists',
  timeout: 'the server did not answer in time (postgres[].connectTimeout); check the address and the server load',
  version: 'upgrade the server',
  other: 'see the error',
};

/** PostgreSQL's own words for an error: SQLSTATE and message when the server sent them, else the message. */
function errorText(err: unknown): string {
  if (err instanceof pg.DatabaseError) return `${err.code ?? ''} ${err.message}`.trim();
  return err instanceof Error ? err.message : String(err);
}

/**
 * node-postgres calls `connect()` on its stream and starts its startup message on 'connect'; this
 * socket is already open, with TLS negotiated as the listener negotiates it, so connect() only says so.
 */
function alreadyOpen(socket: net.Socket): net.Socket {
  socket.connect = (() => {
    process.nextTick(() => socket.emit('connect'));
    return socket;
  }) as typeof socket.connect;
  return socket;
}

/** Checks one listener, printing what it finds; never throws for what the server or network does. */
export async function checkListener(config: PostgresListenerConfig, credentials: CheckCredentials, print: (line: string) => void): Promise<ListenerVerdict> {
  const url = parsePgUrl(config.upstream);
  // libpq's defaults: the OS user's name, and a database named as the user
  // (https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-PARAMKEYWORDS).
  const user = credentials.user ?? url.user ?? os.userInfo().username;
  const database = credentials.database ?? url.database ?? user;
  const password = credentials.password ?? (user === url.user ? url.password : undefined);
  const target = upstreamTarget(url, config.connectTimeout);
  const verdict: ListenerVerdict = { listener: config.name, user, database, cacheable: false, missingTables: [] };
  const refuse = (reason: string, fix: string): ListenerVerdict => {
    print(`  verdict: nothing will be cached: ${reason}; ${fix}`);
    return verdict;
  };
  print(`postgres[${config.name}]: upstream ${target.host}:${target.port} (sslmode=${target.sslmode}), user "${user}", database "${database}"`);

  let socket: net.Socket;
  try {
    socket = await connectUpstream(target);
  } catch (err) {
    const reason = catalogErrorReason(err);
    print(`  connection: failed: ${errorText(err)}`);
    return refuse(`the upstream cannot be reached (${reason}: ${errorText(err)})`, CONNECT_FIX[reason]);
  }
  let client: pg.Client;
  try {
    client = await login(socket, target, { user, database, password });
  } catch (err) {
    const reason = catalogErrorReason(err);
    print(`  authentication: failed: ${errorText(err)}`);
    return refuse(`the user cannot log in (${reason}: ${errorText(err)})`, CONNECT_FIX[reason]);
  }
  try {
    print('  authentication: ok');
    // SHOW needs no function call: a role whose EXECUTE on current_setting was revoked still gets its answer.
    const version = (await client.query<{ server_version: string }>('SHOW server_version')).rows[0]!.server_version;
    const num = Number((await client.query<{ server_version_num: string }>('SHOW server_version_num')).rows[0]!.server_version_num);
    const support = serverSupport(Math.floor(num / 10_000));
    print(`  server: PostgreSQL ${version}, ${support.note}`);

    const tables = [...new Set(config.rules.flatMap((r) => r.tables))];
    let missing: string[] | undefined;
    let failure: unknown;
    try {
      missing = await askCatalog(client, tables);
      print(`  catalog: ok (built-in functions, objects outside pg_catalog${tables.length > 0 ? ', rule tables' : ''})`);
    } catch (err) {
      failure = err;
      print(`  catalog: failed (${catalogErrorReason(err)}): ${errorText(err)}`);
    }
    verdict.missingTables = missing ?? [];
    config.rules.forEach((rule, i) => {
      for (const table of rule.tables.filter((t) => verdict.missingTables.includes(t)))
        print(`  rules[${i}].tables: no table "${table}" in database "${database}"`);
    });
    if (!support.supported) return refuse(`PostgreSQL ${version} is older than ${OLDEST_SUPPORTED}, the oldest sidecache supports`, 'upgrade the server');
    if (missing === undefined) {
      const reason = catalogErrorReason(failure);
      return refuse(`the catalog could not be asked (${reason}: ${errorText(failure)})`, CATALOG_FIX[reason]);
    }
    verdict.cacheable = true;
    print(`  verdict: reads will be cached for user ${user} on database ${database}`);
    return verdict;
  } catch (err) {
    // The session broke between the login and the catalog's questions (the server went away, a timeout).
    const reason = catalogErrorReason(err);
    return refuse(`the session failed (${reason}: ${errorText(err)})`, CATALOG_FIX[reason]);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A session on the listener's upstream socket (TCP, then TLS as sslmode says: connectUpstream), logged in as `user`. */
async function login(socket: net.Socket, target: UpstreamTarget, who: { user: string; database: string; password: string | undefined }): Promise<pg.Client> {
  const client = new pg.Client({
    ...who,
    stream: () => alreadyOpen(socket),
    // TLS, if any, is already on the socket; PGSSLMODE must not make node-postgres ask again.
    ssl: false,
    connectionTimeoutMillis: target.connectTimeoutMs,
    query_timeout: QUERY_TIMEOUT_MS,
    application_name: 'sidecache check',
  });
  // Errors after the login reach the query that was running; this keeps a late socket error from ending the process.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    socket.destroy();
    throw err;
  }
  return client;
}

/**
 * The questions the listener asks, in one transaction whose search_path is pg_catalog's alone
 * (set_config with is_local = true lasts until the transaction ends:
 * https://www.postgresql.org/docs/current/functions-admin.html#FUNCTIONS-ADMIN-SET), so a role's
 * own search_path cannot change the answers. Returns the rule tables that name no relation.
 */
async function askCatalog(client: pg.Client, tables: readonly string[]): Promise<string[]> {
  await client.query('BEGIN');
  try {
    await client.query("SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true)");
    await client.query(BUILTINS);
    await client.query(USER_OBJECTS);
    if (tables.length === 0) return [];
    const { rows } = await client.query<{ i: string }>(MISSING, missingParams(tables));
    return rows.map((r) => tables[Number(r.i) - 1]!);
  } finally {
    // Nothing was written: the transaction only bounds set_config's reach.
    await client.query('ROLLBACK').catch(() => undefined);
  }
}

/** Checks every listener in turn (printing as it goes); true when reads will be cached through every one. */
export async function checkConnect(
  listeners: readonly PostgresListenerConfig[],
  credentials: CheckCredentials,
  print: (line: string) => void,
  buses: readonly BusConfig[] = [],
): Promise<boolean> {
  const wal = buses.filter((b) => b.type === 'postgres-wal');
  if (listeners.length === 0 && wal.length === 0) {
    print('no postgres[] listeners in the configuration: nothing to connect to');
    return true;
  }
  let all = true;
  for (const listener of listeners) {
    const { cacheable } = await checkListener(listener, credentials, print);
    all &&= cacheable;
  }
  // Each postgres-wal bus logs in as its URL says, whatever --user names.
  for (const bus of wal) all = (await checkWalBus(bus, print)) && all;
  return all;
}
