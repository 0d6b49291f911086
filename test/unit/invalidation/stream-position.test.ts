import { describe, expect, it } from 'vitest';
import { advance, compareIds, lostSince, startingPosition, type StreamPosition, type StreamSnapshot } from '../../../src/invalidation/buses/stream-position.js';

const RUN = 'run-a';
/** A stream of Redis 7: entries 1-0 … 5-0 added, `length` of them still there from `firstId` on. */
const snapshot = (over: Partial<StreamSnapshot> = {}): StreamSnapshot => ({
  exists: true,
  entriesAdded: 5,
  length: 5,
  firstId: '1-0',
  lastGeneratedId: '5-0',
  maxDeletedId: '0-0',
  ...over,
});
/** Applied up to entry 3-0, the third one added. */
const at3: StreamPosition = { id: '3-0', added: 3, runId: RUN };

describe('stream IDs', () => {
  it.each([
    ['1-0', '2-0', -1],
    ['2-0', '1-9', 1],
    ['5-1', '5-10', -1],
    ['18446744073709551615-0', '18446744073709551614-99', 1],
    ['7-7', '7-7', 0],
    ['7', '7-0', 0],
  ])('%s vs %s', (a, b, sign) => expect(Math.sign(compareIds(a, b))).toBe(sign));
});

describe('where reading starts, and moves on', () => {
  it('after the last entry of the stream, with its place in the history', () => {
    expect(startingPosition(snapshot(), RUN)).toEqual({ id: '5-0', added: 5, runId: RUN });
  });
  it('at 0-0 when there is no stream yet: every entry of a stream created later is read', () => {
    const start = startingPosition(snapshot({ exists: false }), RUN);
    expect(start).toEqual({ id: '0-0', added: 0, runId: RUN });
    expect(lostSince(start, snapshot({ entriesAdded: 2, length: 2, lastGeneratedId: '2-0' }), RUN)).toBeUndefined();
  });
  it('counts entries applied when Redis counts them (7.0+), and not otherwise', () => {
    expect(advance(at3, '4-0')).toEqual({ id: '4-0', added: 4, runId: RUN });
    expect(advance({ id: '3-0', added: undefined, runId: RUN }, '4-0').added).toBeUndefined();
  });
});

describe('what counts as lost after the last applied entry (default deny)', () => {
  it.each<[string, Partial<StreamSnapshot>, string | undefined]>([
    ['nothing happened', {}, undefined],
    ['entries added after it, none removed', { entriesAdded: 9, length: 9, lastGeneratedId: '9-0' }, undefined],
    ['entries before it trimmed, it still there', { length: 3, firstId: '3-0' }, undefined],
    ['it trimmed too, every later entry still there', { length: 2, firstId: '4-0' }, undefined],
    ['trimmed to empty, nothing added after it', { entriesAdded: 3, length: 0, firstId: undefined, lastGeneratedId: '3-0' }, undefined],
    ['one later entry trimmed', { length: 1, firstId: '5-0' }, 'trimmed before they were read'],
    ['trimmed to empty after entries were added', { length: 0, firstId: undefined }, 'trimmed before they were read'],
    ['a later entry deleted (XDEL), the head untouched', { length: 4, maxDeletedId: '4-0' }, 'deleted (XDEL)'],
    ['an earlier entry deleted', { length: 4, maxDeletedId: '2-0' }, undefined],
    ['the stream deleted', { exists: false }, 'deleted'],
    ['the stream recreated with lower IDs', { entriesAdded: 1, length: 1, firstId: '1-0', lastGeneratedId: '1-0' }, 'recreated'],
    ['the stream recreated with higher IDs', { entriesAdded: 2, length: 2, firstId: '8-0', lastGeneratedId: '9-0', maxDeletedId: '0-0' }, 'trimmed before'],
    ['Redis 6: it trimmed, nothing to count with', { entriesAdded: undefined, maxDeletedId: undefined, length: 2, firstId: '4-0' }, 'before 7.0'],
    ['Redis 6: it still there', { entriesAdded: undefined, maxDeletedId: undefined, length: 3, firstId: '3-0' }, undefined],
  ])('%s', (_, over, reason) => {
    const lost = lostSince(at3, snapshot(over), RUN);
    if (reason === undefined) expect(lost).toBeUndefined();
    else expect(lost).toContain(reason);
  });

  it('Redis restarted or failed over (another run_id): lost, whatever the stream says', () => {
    expect(lostSince(at3, snapshot(), 'run-b')).toContain('run_id');
  });

  it('no stream before and none now: nothing was added', () => {
    expect(lostSince({ id: '0-0', added: 0, runId: RUN }, snapshot({ exists: false }), RUN)).toBeUndefined();
  });
});
