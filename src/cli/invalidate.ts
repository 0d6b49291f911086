import { parseArgs } from 'node:util';
import { isSidecacheError } from '../errors.js';
import { publishOnce } from '../invalidation/publish-once.js';
import { usage } from './help.js';

/** `sidecache invalidate`: through a running sidecache's admin API, or with `--bus` onto a bus. */
export async function invalidate(args: string[]): Promise<number> {
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
