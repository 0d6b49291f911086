#!/usr/bin/env node
import './cli/v8-flags.js';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { isSidecacheError } from './errors.js';
import { isLogLevel, Logger } from './log.js';
import { check } from './cli/check.js';
import { commandHelp, HELP, usage } from './cli/help.js';
import { invalidate } from './cli/invalidate.js';
import { sql } from './cli/sql.js';
import { start } from './cli/start.js';

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function demo(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { once: { type: 'boolean', default: false } } });
  const { runDemo } = await import('./demo/run.js');
  const level = process.env.SIDECACHE_LOG_LEVEL ?? 'warn';
  return runDemo({ once: values.once, log: new Logger({ level: isLogLevel(level) ? level : 'warn' }), print: (line) => console.log(line) });
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
