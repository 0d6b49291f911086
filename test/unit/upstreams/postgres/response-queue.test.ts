import { describe, expect, it } from 'vitest';
import { Capture } from '../../../../src/upstreams/postgres/capture.js';
import type { Frame } from '../../../../src/upstreams/postgres/framing.js';
import { ResponseQueue, type UpstreamSlot } from '../../../../src/upstreams/postgres/response-queue.js';
import { bindComplete, commandComplete, dataRow, errorResponse, notification, parseComplete, readMessages, readyForQuery } from '../../../helpers/pg-bytes.js';

const frame = (bytes: Buffer): Frame => ({ code: bytes[0]!, bytes });

/** A queue whose client is an array of written messages (`Z:I`, `D:…`, or a stored answer's name). */
function setup() {
  const written: string[] = [];
  const ended: { slot: UpstreamSlot; status: string }[] = [];
  const queue = new ResponseQueue({
    write: (bytes) => {
      const text = bytes.toString('latin1');
      if (text.startsWith('stored:')) return void written.push(text);
      for (const m of readMessages(bytes)) written.push(m.code === 'Z' ? `Z:${m.body.toString('latin1')}` : m.code);
    },
    now: () => 0,
    ended: (slot, status) => void ended.push({ slot, status: String.fromCharCode(status) }),
  });
  const feed = (...messages: Buffer[]): void => {
    for (const m of messages) queue.fromUpstream(frame(m));
  };
  const respond = (status: 'I' | 'T' | 'E' = 'I') => feed(bindComplete(), dataRow('1'), commandComplete('SELECT 1'), readyForQuery(status));
  return { queue, written, ended, feed, respond };
}

describe('ResponseQueue holding a write until its invalidation is published (issue 17)', () => {
  it('holds the ReadyForQuery and everything after it, in order, until the promise settles', async () => {
    const written: string[] = [];
    let release!: () => void;
    const published = new Promise<void>((resolve) => (release = resolve));
    let first = true;
    const queue = new ResponseQueue({
      write: (bytes) => {
        const text = bytes.toString('latin1');
        if (text.startsWith('stored:')) return void written.push(text);
        for (const m of readMessages(bytes)) written.push(m.code === 'Z' ? `Z:${m.body.toString('latin1')}` : m.code);
      },
      now: () => 0,
      ended: () => {
        if (!first) return;
        first = false;
        return published;
      },
    });
    const feed = (...messages: Buffer[]): void => {
      for (const m of messages) queue.fromUpstream(frame(m));
    };
    queue.open(['UPDATE t SET v = 1'], false);
    queue.open(['SELECT 1'], false);
    queue.answer(Buffer.from('stored:hit'));
    feed(commandComplete('UPDATE 1'), readyForQuery('I'));
    feed(dataRow('1'), commandComplete('SELECT 1'), readyForQuery('I'));
    expect(written).toEqual(['C']);
    release();
    await published;
    await new Promise((resolve) => setImmediate(resolve));
    expect(written).toEqual(['C', 'Z:I', 'D', 'C', 'Z:I', 'stored:hit']);
    // Nothing held any more: bytes go out at once.
    queue.answer(Buffer.from('stored:next'));
    expect(written.at(-1)).toBe('stored:next');
  });
});

describe('ResponseQueue answering a write in one write to the client (issue 15)', () => {
  it('keeps the CommandComplete written before a hold with the held ReadyForQuery: one flush', async () => {
    // A writer that batches while corked, as net.Socket does: each flush is one system call.
    const flushes: string[][] = [];
    let corked = 0;
    const pending: string[] = [];
    const flush = () => {
      if (corked === 0 && pending.length > 0) flushes.push(pending.splice(0));
    };
    const queue = new ResponseQueue({
      write: (bytes) => {
        for (const m of readMessages(bytes)) pending.push(m.code);
        flush();
      },
      now: () => 0,
      ended: () => Promise.resolve(),
      holding: (on) => {
        corked += on ? 1 : -1;
        flush();
      },
    });
    queue.open(['UPDATE t SET v = 1'], false);
    // The connection corks the client around each upstream chunk it routes.
    corked++;
    queue.fromUpstream(frame(commandComplete('UPDATE 1')));
    queue.fromUpstream(frame(readyForQuery('I')));
    corked--;
    flush();
    expect(flushes).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(flushes).toEqual([['C', 'Z']]);
    expect(corked).toBe(0);
  });

  it('releases the writer when the connection closes during a hold', () => {
    const calls: boolean[] = [];
    const queue = new ResponseQueue({ write: () => {}, now: () => 0, ended: () => new Promise(() => {}), holding: (on) => void calls.push(on) });
    queue.open(['UPDATE t SET v = 1'], false);
    queue.fromUpstream(frame(commandComplete('UPDATE 1')));
    queue.fromUpstream(frame(readyForQuery('I')));
    queue.close();
    expect(calls).toEqual([true, false]);
  });
});

describe('ResponseQueue', () => {
  it('ends an upstream slot at its ReadyForQuery, with the transaction status', () => {
    const { queue, written, ended, feed, respond } = setup();
    const slot = queue.open(['SELECT 1'], false, 'miss');
    feed(bindComplete(), dataRow('1'));
    expect(ended).toEqual([]);
    feed(commandComplete('SELECT 1'));
    expect(ended).toEqual([]);
    feed(readyForQuery('T'));
    expect(written).toEqual(['2', 'D', 'C', 'Z:T']);
    expect(ended).toEqual([{ slot, status: 'T' }]);
    // The next slot's frames belong to it, not to the one that ended.
    const next = queue.open([], false);
    respond();
    expect(ended.map((e) => e.slot)).toEqual([slot, next]);
  });

  it('writes a stored answer at once when nothing is outstanding', () => {
    const { queue, written } = setup();
    queue.answer(Buffer.from('stored:a'));
    expect(written).toEqual(['stored:a']);
  });

  it('holds stored answers behind the slots before them, in request order', () => {
    const { queue, written, respond } = setup();
    queue.open([], false);
    queue.answer(Buffer.from('stored:x'));
    queue.open([], false);
    queue.answer(Buffer.from('stored:y'));
    queue.answer(Buffer.from('stored:z'));
    expect(written).toEqual([]);
    respond();
    expect(written).toEqual(['2', 'D', 'C', 'Z:I', 'stored:x']);
    respond();
    expect(written).toEqual(['2', 'D', 'C', 'Z:I', 'stored:x', '2', 'D', 'C', 'Z:I', 'stored:y', 'stored:z']);
  });

  it('swallows the ParseCompletes of Parses sidecache sent on its own, and only those', () => {
    const { queue, written, feed } = setup();
    const slot = queue.open([], false);
    slot.swallowParse = 1;
    feed(parseComplete(), parseComplete(), bindComplete(), commandComplete('SELECT 0'), readyForQuery('I'));
    expect(written).toEqual(['1', '2', 'C', 'Z:I']);
    expect(slot.swallowParse).toBe(0);
  });

  it('passes asynchronous messages through when nothing is outstanding', () => {
    const { queue, written, ended, feed } = setup();
    feed(notification('ch', 'hello'));
    expect(written).toEqual(['A']);
    expect(ended).toEqual([]);
    expect(() => queue.close()).not.toThrow();
  });

  it('is uncertain while a slot that may change the session is outstanding', () => {
    const { queue, respond } = setup();
    queue.open([], false);
    expect(queue.uncertain).toBe(false);
    queue.open(['SET x = 1'], true);
    expect(queue.uncertain).toBe(true);
    respond();
    expect(queue.uncertain).toBe(true);
    respond();
    expect(queue.uncertain).toBe(false);
  });

  it('hands a captured response to onEnd: stored when clean and idle, undefined otherwise', () => {
    const { queue, feed, respond } = setup();
    const results: (string | undefined)[] = [];
    const open = () => {
      const slot = queue.open([], false, 'miss', new Capture(1024));
      slot.onEnd = (bytes) =>
        void results.push(
          bytes &&
            readMessages(bytes)
              .map((m) => m.code)
              .join(''),
        );
    };
    open();
    respond('I');
    open();
    respond('T');
    open();
    feed(errorResponse('42P01', 'no such table'), readyForQuery('I'));
    expect(results).toEqual(['2DCZ', undefined, undefined]);
  });

  it('ends every outstanding upstream slot without a response when the connection closes', () => {
    const { queue, written } = setup();
    const ends: (Buffer | undefined)[] = [];
    queue.open([], false).onEnd = (bytes) => void ends.push(bytes);
    queue.answer(Buffer.from('stored:x'));
    queue.open([], false).onEnd = (bytes) => void ends.push(bytes);
    queue.close();
    expect(ends).toEqual([undefined, undefined]);
    expect(written).toEqual([]);
    expect(queue.uncertain).toBe(false);
  });
  it('drops a skippable Query slot when the batch before it fails with replies still due; keeps it when the batch completed', () => {
    const failed = setup();
    const batch = failed.queue.open([], false);
    batch.replies = 3;
    const skipped = failed.queue.open(['SET search_path = x'], true);
    skipped.skippable = true;
    skipped.unknown = true;
    let skippedEnd: unknown = 'not called';
    skipped.onEnd = (bytes) => (skippedEnd = bytes);
    failed.feed(parseComplete(), errorResponse('22012', 'division by zero'), readyForQuery('I'));
    expect(failed.ended.map((e) => e.slot)).toEqual([batch]);
    expect(skippedEnd).toBeUndefined();
    expect(batch.errored && batch.unknown).toBe(true);
    expect(failed.queue.uncertain).toBe(false);

    const ran = setup();
    const done = ran.queue.open([], false);
    done.replies = 1;
    const query = ran.queue.open(['SELECT 1/0'], true);
    query.skippable = true;
    ran.feed(commandComplete('SELECT 1'), errorResponse('22012', 'division by zero'), readyForQuery('I'), readyForQuery('I'));
    expect(ran.ended.map((e) => e.slot)).toEqual([done, query]);
  });

  it('calls back the Parses a slot ended without ParseComplete for', () => {
    const { queue, feed } = setup();
    const slot = queue.open([], false);
    const undone: string[] = [];
    slot.parses.push(
      () => undone.push('a'),
      () => undone.push('b'),
    );
    feed(parseComplete(), errorResponse('42P01', 'no such table'), readyForQuery('I'));
    expect(undone).toEqual(['b']);
  });
});
