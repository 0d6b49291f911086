#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadConfig } from './config/load.js';
import type { Config } from './config/schema.js';
import { ConfigError, isSidecacheError, SidecacheError } from './errors.js';
import { fileProblems } from './config/files.js';
import { publishOnce } from './invalidation/publish-once.js';
import { installSql, uninstallSql } from './invalidation/triggers.js';
import { isLogLevel, Logger } from './log.js';
import { SidecacheServer } from './server.js';
import { shadowedRoutes } from './config/route-shadows.js';
import { checkConnect } from './upstreams/postgres/check-connect.js';

const HELP = `sidecache — a read-through caching sidecar for HTTP APIs and PostgreSQL

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

const CHECK_HELP = `Usage: sidecache check [-c FILE] [--connect [--user U] [--database D] [--password-file F]]

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

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function configPath(value: string | undefined): string {
  return value ?? process.env.SIDECACHE_CONFIG ?? 'sidecache.yaml';
}

function makeLogger(): Logger {
  const level = process.env.SIDECACHE_LOG_LEVEL ?? 'info';
  return new Logger({ level: isLogLevel(level) ? level : 'info' });
}

async function start(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' } } });
  const log = makeLogger();
  // SIGHUP re-reads the file (nginx, PgBouncer): what can change live does; an invalid file changes
  // nothing. Installed first: without a handler a SIGHUP ends the process, so one that comes while
  // starting is kept and applied once started.
  let server: SidecacheServer | undefined;
  let reloadWhenStarted = false;
  const reload = (): void => {
    if (server === undefined) {
      reloadWhenStarted = true;
      return log.info('SIGHUP while starting: the file is read again once started');
    }
    server.reloadFromFile().catch((err: unknown) => log.error('reload refused; the running configuration stays', { err: (err as Error).message }));
  };
  process.on('SIGHUP', reload);
  const file = configPath(values.config);
  const config = await loadWithFiles(file);
  log.info('config loaded', { file });
  const starting = new SidecacheServer(config, { log, configFile: file });
  await starting.start();
  server = starting;
  if (reloadWhenStarted) reload();
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        log.warn('second signal: exiting at once', { signal });
        process.exit(1);
      }
      stopping = true;
      log.info('stopping', { signal, graceMs: starting.config.shutdownGrace });
      starting.stop().then(
        () => resolve(0),
        (err: unknown) => {
          log.error('stop failed', { err });
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

async function check(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string', short: 'c' },
      help: { type: 'boolean', short: 'h', default: false },
      connect: { type: 'boolean', default: false },
      user: { type: 'string' },
      database: { type: 'string' },
      'password-file': { type: 'string' },
    },
  });
  if (values.help) {
    console.log(CHECK_HELP);
    return 0;
  }
  if (!values.connect) {
    if (values.user !== undefined || values.database !== undefined || values['password-file'] !== undefined)
      throw usage('check: --user, --database and --password-file go with --connect');
    const config = await loadWithFiles(configPath(values.config));
    const dead = shadowedRoutes(config);
    for (const { path, by } of dead) console.log(`${path}: can never match: every request it matches goes to ${by}, listed before it`);
    if (dead.length > 0) return 1;
    console.log('ok');
    return 0;
  }
  const password = values['password-file'] === undefined ? process.env.PGPASSWORD : passwordFrom(values['password-file']);
  let config: Config;
  try {
    config = await loadWithFiles(configPath(values.config));
  } catch (err) {
    // With --connect, exit 1 means "a listener cannot cache": a configuration that cannot be read or is invalid is 2.
    if (!isSidecacheError(err)) throw err;
    console.error(`sidecache: ${err.message}`);
    return 2;
  }
  const cacheable = await checkConnect(
    config.postgres,
    { user: values.user, database: values.database, password },
    (line) => console.log(line),
    config.invalidation,
  );
  return cacheable ? 0 : 1;
}

/** The configuration in `file`, with the files it names read as PEM: every problem at once, with its key path. */
async function loadWithFiles(file: string): Promise<Config> {
  const config = await loadConfig(file);
  const problems = fileProblems(config);
  if (problems.length > 0) throw new ConfigError(file, problems);
  return config;
}

/** The first line of a password file (as .pgpass holds one per line); unreadable is a usage error. */
function passwordFrom(file: string): string {
  try {
    return readFileSync(file, 'utf8').split(/\r?\n/)[0]!;
  } catch (err) {
    throw usage(`check: cannot read --password-file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

async function invalidate(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      admin: { type: 'string', default: 'http://127.0.0.1:9090' },
      token: { type: 'string' },
      tag: { type: 'string', multiple: true },
      table: { type: 'string', multiple: true },
      key: { type: 'string', multiple: true },
      prefix: { type: 'string', multiple: true },
      all: { type: 'boolean' },
      bus: { type: 'string' },
      type: { type: 'string' },
      channel: { type: 'string', default: 'sidecache' },
      'max-len': { type: 'string', default: '10000' },
    },
  });
  const message = { tags: values.tag, tables: values.table, keys: values.key, prefixes: values.prefix, all: values.all };
  if (!message.tags && !message.tables && !message.keys && !message.prefixes && !message.all) {
    throw usage('invalidate needs at least one of --tag, --table, --key, --prefix or --all');
  }
  if (values.bus !== undefined) return publishToBus(values.bus, { type: values.type, channel: values.channel, maxLen: values['max-len'], args }, message);
  if (values.type !== undefined || args.includes('--channel') || args.includes('--max-len'))
    throw usage('invalidate: --type, --channel and --max-len go with --bus');
  const token = values.token ?? process.env.SIDECACHE_ADMIN_TOKEN;
  const headers: Record<string, string> = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const url = new URL('/invalidate', values.admin).toString();
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', headers, body: JSON.stringify(message) });
  } catch (err) {
    console.error(`sidecache: cannot reach ${url}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message}`);
    return 1;
  }
  const body = await res.text();
  if (!res.ok) {
    console.error(`sidecache: ${url} answered ${res.status}: ${body.trim()}`);
    return 1;
  }
  console.log(`invalidated ${(JSON.parse(body) as { invalidated: number }).invalidated}`);
  return 0;
}

/** `invalidate --bus`: the message goes onto the bus itself, which every sidecache subscribed to it reads. */
async function publishToBus(
  url: string,
  options: { type: string | undefined; channel: string; maxLen: string; args: string[] },
  message: object,
): Promise<number> {
  if (options.args.includes('--admin') || options.args.includes('--token')) throw usage('invalidate: --bus publishes on the bus, without --admin or --token');
  const maxLen = Number(options.maxLen);
  if (!Number.isInteger(maxLen) || maxLen < 0)
    throw usage(`invalidate --max-len: expected a whole number of entries (0: no trimming), got "${options.maxLen}"`);
  let name: string;
  try {
    name = await publishOnce({ url, type: options.type, channel: options.channel, maxLen }, JSON.stringify(message));
  } catch (err) {
    if (isSidecacheError(err)) throw err;
    console.error(`sidecache: cannot publish on the bus: ${(err as Error).message}`);
    return 1;
  }
  console.log(`published on ${name}`);
  return 0;
}

async function demo(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { once: { type: 'boolean', default: false } } });
  const { runDemo } = await import('./demo/run.js');
  const level = process.env.SIDECACHE_LOG_LEVEL ?? 'warn';
  return runDemo({ once: values.once, log: new Logger({ level: isLogLevel(level) ? level : 'warn' }), print: (line) => console.log(line) });
}

async function sql(args: string[]): Promise<number> {
  const [what, ...rest] = args;
  if (what !== 'triggers') throw usage('sql needs a subject: sidecache sql triggers --channel C --tables a,b');
  const { values } = parseArgs({
    args: rest,
    options: {
      channel: { type: 'string' },
      tables: { type: 'string' },
      'all-tables': { type: 'boolean', default: false },
      schema: { type: 'string', default: 'public' },
      ddl: { type: 'boolean', default: false },
      uninstall: { type: 'boolean', default: false },
    },
  });
  if (values.channel === undefined || !/^[A-Za-z_][A-Za-z0-9_$]{0,62}$/.test(values.channel)) {
    throw usage('sql triggers needs --channel with a channel name (letters, digits, "_")');
  }
  const tables = (values.tables ?? '')
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
  if (!values.uninstall && tables.length === 0 && !values['all-tables']) throw usage('sql triggers needs --tables a,b or --all-tables');
  const options = { channel: values.channel, tables, allTables: values['all-tables'], schema: values.schema, ddl: values.ddl };
  process.stdout.write(values.uninstall ? uninstallSql(options) : installSql(options));
  return 0;
}

function usage(message: string): SidecacheError {
  return new SidecacheError('SC_ERR_USAGE', message);
}

const commands: Record<string, (args: string[]) => Promise<number>> = { start, check, demo, invalidate, sql };

/** The lines of HELP's usage that describe `command` (its synopsis and their continuation lines). */
function commandHelp(command: string): string {
  const lines: string[] = [];
  let ours = false;
  for (const line of HELP.split('\n')) {
    if (line.startsWith('  sidecache ')) ours = line.startsWith(`  sidecache ${command} `) || line === `  sidecache ${command}`;
    else if (!line.startsWith('      ')) ours = false;
    if (ours) lines.push(line);
  }
  return `Usage:\n${lines.join('\n')}`;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    console.log(HELP);
    return command === undefined ? 2 : 0;
  }
  if (command === '--version' || command === '-v') {
    console.log(version());
    return 0;
  }
  const run = commands[command];
  if (run === undefined) throw usage(`unknown command "${command}"`);
  // check has a page of its own; the others' usage is their part of HELP.
  if (command !== 'check' && (rest.includes('--help') || rest.includes('-h'))) {
    console.log(commandHelp(command));
    return 0;
  }
  return run(rest);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const code = String((err as { code?: unknown }).code);
    if (code === 'SC_ERR_USAGE' || code.startsWith('ERR_PARSE_ARGS')) {
      console.error(`sidecache: ${(err as Error).message}\nRun "sidecache --help" for usage.`);
      process.exit(2);
    }
    console.error(`sidecache: ${isSidecacheError(err) ? err.message : ((err as Error).stack ?? String(err))}`);
    process.exit(1);
  },
);
