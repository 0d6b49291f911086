import { SidecacheError } from '../errors.js';

/** `sidecache --help`; each command's `--help` prints its own part of it (`commandHelp`), `check` has CHECK_HELP. */
export const HELP = `sidecache — a read-through caching sidecar for HTTP APIs and PostgreSQL

Usage:
  sidecache start [-c FILE]          run with a configuration (default $SIDECACHE_CONFIG or ./sidecache.yaml)
  sidecache check [-c FILE]          validate a configuration: prints "ok" or every problem, and gateway
                                     routes that can never match (exit 1)
  sidecache check [-c FILE] --connect [--user U] [--database D] [--password-file F]
                                     also log in to each postgres[] upstream (password: F or $PGPASSWORD) and
                                     say whether reads will be cached (exit 0), or why not (exit 1); config error: exit 2;
                                     and to each postgres-wal bus, saying what logical replication still needs
  sidecache demo [--once]            run the built-in demo: embedded PostgreSQL, an example API, sidecache in front
  sidecache invalidate [--admin URL] [--token T] [--tag X] [--table Y] [--key K] [--prefix P] [--all]
                                     send an invalidation to a running sidecache (options repeat)
  sidecache invalidate --bus URL [--type postgres|redis|redis-stream] [--channel C] [--max-len N] [--tag X] …
                                     publish it straight onto a bus instead (NOTIFY, PUBLISH or XADD on channel or
                                     stream C, default sidecache; --type from the URL's scheme unless named)
  sidecache sql triggers --channel C (--tables a,b | --all-tables) [--schema S] [--ddl] [--uninstall]
                                     print SQL that makes PostgreSQL NOTIFY C on every write (and DDL)
  sidecache --help | --version

Environment: SIDECACHE_CONFIG, SIDECACHE_ADMIN_TOKEN (for invalidate), SIDECACHE_LOG_LEVEL (debug|info|warn|error),
PGPASSWORD (for check --connect).`;

/** `sidecache check --help`. */
export const CHECK_HELP = `Usage: sidecache check [-c FILE] [--connect [--user U] [--database D] [--password-file F]]

Validates the configuration (-c, else $SIDECACHE_CONFIG, else ./sidecache.yaml): prints "ok", or every
problem with its key path, and each gateway route (http[].routes[]) that can never match because an
earlier route takes every request it would (exit 1).

--connect            also, for every postgres[] listener, logs in to its upstream as a client through it
                     would (host, port, sslmode and TLS files of postgres[].upstream), reports the login
                     (or PostgreSQL's error and SQLSTATE), the server version, and the catalog questions
                     sidecache asks, then says "reads will be cached for user U on database D" or
                     "nothing will be cached: <reason>; <fix>". Exit 0 when every listener can cache, 1 when
                     one cannot, 2 for a configuration or usage error.
--user U             the user to log in as (default: the upstream URL's, else the OS user, as libpq)
--database D         the database (default: the upstream URL's, else the user's name, as libpq)
--password-file F    read the password from F (its first line); else $PGPASSWORD, else the URL's
                     password when the user is the URL's. Never put a password on the command line.`;

/** The lines of HELP's usage that describe `command` (its synopsis and their continuation lines). */
export function commandHelp(command: string): string {
  const lines: string[] = [];
  let ours = false;
  for (const line of HELP.split('\n')) {
    if (line.startsWith('  sidecache ')) ours = line.startsWith(`  sidecache ${command} `) || line === `  sidecache ${command}`;
    else if (!line.startsWith('      ')) ours = false;
    if (ours) lines.push(line);
  }
  return `Usage:\n${lines.join('\n')}`;
}

/** A usage error: the command line prints it with a pointer to --help and exits 2. */
export function usage(message: string): SidecacheError {
  return new SidecacheError('SC_ERR_USAGE', message);
}
