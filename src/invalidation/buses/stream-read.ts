import type { Redis } from 'ioredis';
import type { StreamSnapshot } from './stream-position.js';

/**
 * One read of a Redis stream: XINFO STREAM and XRANGE after the last applied ID in one Lua script,
 * so that the snapshot the gap check reads and the entries returned are of the same moment
 * (a script runs atomically: https://redis.io/docs/latest/develop/interact/programmability/eval-intro/).
 * Two commands would let a trim slip between them and hide the entries it took. Fields Redis
 * before 7.0 does not report come back as -1 / '' (a Lua nil would cut the reply short).
 */
const READ_SCRIPT = `
local info = redis.pcall('XINFO', 'STREAM', KEYS[1])
if type(info) == 'table' and info.err then
  if string.find(info.err, 'no such key', 1, true) then return {0} end
  return redis.error_reply(info.err)
end
local f = {}
for i = 1, #info, 2 do f[info[i]] = info[i + 1] end
local first = f['first-entry']
local entries = {}
if tonumber(ARGV[2]) > 0 then
  entries = redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[2])
end
return {1, f['entries-added'] or -1, f['length'], first and first[1] or '', f['last-generated-id'], f['max-deleted-entry-id'] or '', entries}
`;

const COMMAND = 'sidecacheStreamRead';

/** One entry as XRANGE returns it: its ID and its field/value list. */
export interface StreamEntry {
  readonly id: string;
  readonly fields: readonly Buffer[];
}

export interface StreamRead {
  readonly snapshot: StreamSnapshot;
  readonly entries: readonly StreamEntry[];
}

type ReadCommand = (key: string, afterId: string, count: number) => Promise<unknown>;

/** Teaches `client` the read script (EVALSHA, sent as EVAL once when Redis does not know it yet). */
export function defineStreamRead(client: Redis): void {
  client.defineCommand(COMMAND, { numberOfKeys: 1, lua: READ_SCRIPT });
}

/** The stream now, and up to `count` entries after `afterId` (none when `count` is 0), values as raw bytes. */
export async function readStream(client: Redis, key: string, afterId: string, count: number): Promise<StreamRead> {
  const command = (client as unknown as Record<string, ReadCommand>)[`${COMMAND}Buffer`]!;
  return parseReply(await command.call(client, key, afterId, count));
}

function parseReply(reply: unknown): StreamRead {
  const row = reply as unknown[];
  if (Number(row[0]) === 0) {
    return {
      snapshot: { exists: false, entriesAdded: undefined, length: 0, firstId: undefined, lastGeneratedId: '0-0', maxDeletedId: undefined },
      entries: [],
    };
  }
  const added = Number(row[1]);
  const firstId = String(row[3]);
  const maxDeleted = String(row[5]);
  const snapshot: StreamSnapshot = {
    exists: true,
    entriesAdded: added < 0 ? undefined : added,
    length: Number(row[2]),
    firstId: firstId === '' ? undefined : firstId,
    lastGeneratedId: String(row[4]),
    maxDeletedId: maxDeleted === '' ? undefined : maxDeleted,
  };
  const entries = (row[6] as [Buffer, Buffer[] | null][]).map(([id, fields]) => ({ id: id.toString(), fields: fields ?? [] }));
  return { snapshot, entries };
}

/** The field of an entry that carries the message: `XADD <stream> * msg <message>` (docs/contracts.md). */
export const MESSAGE_FIELD = 'msg';

/** The messages of one entry: the value of each `msg` field (an entry may repeat a field name). */
export function messagesOf(entry: StreamEntry): Buffer[] {
  const found: Buffer[] = [];
  for (let i = 0; i + 1 < entry.fields.length; i += 2) {
    if (entry.fields[i]!.toString() === MESSAGE_FIELD) found.push(entry.fields[i + 1]!);
  }
  return found;
}
