/**
 * Where a Redis Streams bus stands in its stream, and whether anything after that point was lost.
 * Pure logic, kept apart from the connection so that each case of "lost" is a table test.
 *
 * Stream IDs are `<ms>-<seq>`, both unsigned 64-bit, ordered by ms then seq
 * (https://redis.io/docs/latest/develop/data-types/streams/#entry-ids).
 */

/** The last entry applied, with its place in the stream's history when Redis tells it (7.0+). */
export interface StreamPosition {
  /** ID of the last entry applied, or of the stream's last entry when reading began (`0-0`: no stream then). */
  readonly id: string;
  /** The stream's `entries-added` count when `id` was added: how many entries were ever added up to it. */
  readonly added: number | undefined;
  /** Redis's `run_id` when the position was taken: another process may have lost what this one held. */
  readonly runId: string;
}

/** XINFO STREAM of one moment (taken in the same script as the read, so both see the same stream). */
export interface StreamSnapshot {
  readonly exists: boolean;
  /** `entries-added` (Redis 7.0+): every entry ever added, trimmed and deleted ones included. */
  readonly entriesAdded: number | undefined;
  readonly length: number;
  /** ID of the first entry present; undefined when the stream is empty. */
  readonly firstId: string | undefined;
  readonly lastGeneratedId: string;
  /** `max-deleted-entry-id` (Redis 7.0+): the greatest ID removed by XDEL (trimming does not set it). */
  readonly maxDeletedId: string | undefined;
}

/** Compares two stream IDs: negative, zero or positive, as `a` is before, equal to or after `b`. */
export function compareIds(a: string, b: string): number {
  const [am, as] = splitId(a);
  const [bm, bs] = splitId(b);
  if (am !== bm) return am < bm ? -1 : 1;
  return as === bs ? 0 : as < bs ? -1 : 1;
}

function splitId(id: string): [bigint, bigint] {
  const dash = id.indexOf('-');
  return dash < 0 ? [BigInt(id), 0n] : [BigInt(id.slice(0, dash)), BigInt(id.slice(dash + 1))];
}

/** Where reading starts when nothing was applied before (or what was is lost): after the stream's last entry. */
export function startingPosition(snapshot: StreamSnapshot, runId: string): StreamPosition {
  if (!snapshot.exists) return { id: '0-0', added: 0, runId };
  return { id: snapshot.lastGeneratedId, added: snapshot.entriesAdded, runId };
}

/** The position after applying entry `id`, the next one after `position` in the stream. */
export function advance(position: StreamPosition, id: string): StreamPosition {
  return { id, added: position.added === undefined ? undefined : position.added + 1, runId: position.runId };
}

/**
 * Why entries added after `position` may never be read (undefined: nothing was lost). Default
 * deny: whatever cannot be proven complete counts as lost, and the runner flushes.
 *
 * Trimming (XADD/XTRIM MAXLEN or MINID) removes entries from the head, so while an entry at or
 * before the position is still there, nothing after it was trimmed, and only XDEL (seen in
 * `max-deleted-entry-id`) can have removed one. Once the head has passed the position, every entry
 * present is after it, and none was lost exactly when their number is the number added since.
 */
export function lostSince(position: StreamPosition, snapshot: StreamSnapshot, runId: string): string | undefined {
  if (runId !== position.runId) return 'Redis restarted or failed over (another run_id): what it held may be lost';
  if (!snapshot.exists) return position.id === '0-0' ? undefined : 'the stream was deleted';
  if (compareIds(snapshot.lastGeneratedId, position.id) < 0) return 'the stream was recreated (its last ID is before the last one applied)';
  if (snapshot.maxDeletedId !== undefined && compareIds(snapshot.maxDeletedId, position.id) > 0)
    return 'an entry after the last applied one was deleted (XDEL)';
  if (snapshot.firstId !== undefined && compareIds(snapshot.firstId, position.id) <= 0) return undefined;
  if (snapshot.entriesAdded === undefined || position.added === undefined) {
    return 'the stream was trimmed up to the last applied entry, and Redis before 7.0 cannot tell whether more was trimmed';
  }
  if (snapshot.length !== snapshot.entriesAdded - position.added) return 'entries after the last applied one were trimmed before they were read';
  return undefined;
}
