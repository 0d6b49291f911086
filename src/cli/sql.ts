import { parseArgs } from 'node:util';
import { installSql, uninstallSql } from '../invalidation/triggers.js';
import { usage } from './help.js';

/** `sidecache sql triggers`: prints the SQL that makes PostgreSQL NOTIFY on writes (or removes it). */
export async function sql(args: string[]): Promise<number> {
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
