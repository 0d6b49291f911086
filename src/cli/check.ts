import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { shadowedRoutes } from '../config/route-shadows.js';
import type { Config } from '../config/schema.js';
import { isSidecacheError } from '../errors.js';
import { checkConnect } from '../upstreams/postgres/check-connect.js';
import { configPath, loadWithFiles } from './config-file.js';
import { CHECK_HELP, usage } from './help.js';

/** `sidecache check`: validates the configuration, and with `--connect` logs in to each upstream. */
export async function check(args: string[]): Promise<number> {
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

/** The first line of a password file (as .pgpass holds one per line); unreadable is a usage error. */
function passwordFrom(file: string): string {
  try {
    return readFileSync(file, 'utf8').split(/\r?\n/)[0]!;
  } catch (err) {
    throw usage(`check: cannot read --password-file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}
