#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadConfig } from './config/load.js';
import { isSidecacheError, SidecacheError } from './errors.js';
import { installSql, uninstallSql } from './invalidation/triggers.js';
import { isLogLevel, Logger } from './log.js';
import { SidecacheServer } from './server.js';

const HELP = `sidecache — a read-through caching sidecar for HTTP APIs and PostgreSQL

Usage:
  sidecache start [-c FILE]          run with a configuration (default $SIDECACHE_CONFIG or ./sidecache.yaml)
  sidecache check [-c FILE]          validate a configuration: prints "ok" or every problem (exit 1)
  sidecache demo [--once]            run the built-in demo: embedded PostgreSQL, an example API, sidecache in front
  sidecache invalidate [--admin URL] [--token T] [--tag X] [--table Y] [--key K] [--prefix P] [--all]
                                     send an invalidation to a running sidecache (options repeat)
  sidecache sql triggers --channel C (--tables a,b | --all-tables) [--schema S] [--ddl] [--uninstall]
                                     print SQL that makes PostgreSQL NOTIFY C on every write (and DDL)
  sidecache --help | --version

Environment: SIDECACHE_CONFIG, SIDECACHE_ADMIN_TOKEN (for invalidate), SIDECACHE_LOG_LEVEL (debug|info|warn|error).`;

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
  const file = configPath(values.config);
  const config = await loadConfig(file);
  log.info('config loaded', { file });
  const server = new SidecacheServer(config, { log, configFile: file });
  await server.start();
  // SIGHUP re-reads the file (nginx, PgBouncer): what can change live does; an invalid file changes nothing.
  process.on('SIGHUP', () => {
    server.reloadFromFile().catch((err: unknown) => log.error('reload refused; the running configuration stays', { err: (err as Error).message }));
  });
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        log.warn('second signal: exiting at once', { signal });
        process.exit(1);
      }
      stopping = true;
      log.info('stopping', { signal, graceMs: server.config.shutdownGrace });
      server.stop().then(
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
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' } } });
  await loadConfig(configPath(values.config));
  console.log('ok');
  return 0;
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
    },
  });
  const message = { tags: values.tag, tables: values.table, keys: values.key, prefixes: values.prefix, all: values.all };
  if (!message.tags && !message.tables && !message.keys && !message.prefixes && !message.all) {
    throw usage('invalidate needs at least one of --tag, --table, --key, --prefix or --all');
  }
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
