import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { heldBodyBytes, SharedBody } from '../../../../src/upstreams/http/body-tee.js';
import { readAll } from '../../../helpers/body-reader.js';
import { gate } from '../../../helpers/wait.js';

/** A body that yields `parts` one by one, each once `open` lets it, and counts how many it was asked for. */
function source(parts: string[], options: { failAt?: number; open?: Promise<void> } = {}) {
  const state = { asked: 0, returned: false };
  const iterable: AsyncIterable<Buffer> = {
    [Symbol.asyncIterator]: () => ({
      next: async () => {
        const i = state.asked++;
        await options.open;
        if (i === options.failAt) throw new Error('reset');
        return i < parts.length ? { value: Buffer.from(parts[i]!), done: false } : { value: undefined, done: true };
      },
      return: async () => {
        state.returned = true;
        return { value: undefined, done: true };
      },
    }),
  };
  return { iterable, state };
}

describe('SharedBody', () => {
  it('reads the whole body for the store with nobody reading, and every reader gets it at its own pace', async () => {
    const { iterable, state } = source(['a', 'b', 'c']);
    const body = new SharedBody(iterable, 100);
    const first = body.reader()!;
    expect((await body.kept)?.toString()).toBe('abc');
    expect(state.asked).toBe(4);
    const late = body.reader();
    expect(await readAll(first)).toBe('abc');
    expect(late === undefined ? 'abc' : await readAll(late)).toBe('abc');
    expect(heldBodyBytes()).toBe(0);
  });

  it('keeps a copy, never a view that would pin the larger buffer a chunk was cut from', async () => {
    const slab = Buffer.alloc(256 * 1024, 'z');
    const iterable: AsyncIterable<Buffer> = {
      async *[Symbol.asyncIterator]() {
        yield slab.subarray(0, 10_000);
      },
    };
    const kept = (await new SharedBody(iterable, 100_000).kept)!;
    expect(kept.length).toBe(10_000);
    expect(kept.buffer.byteLength).toBeLessThan(slab.length);
  });

  it('a second reader starts from the first byte while the upstream is still sending', async () => {
    const body = new SharedBody(source(['a', 'b']).iterable, 100);
    const one = body.reader()!;
    expect((await one.next()).value?.toString()).toBe('a');
    const two = body.reader()!;
    expect((await two.next()).value?.toString()).toBe('a');
    expect(await readAll(one)).toBe('b');
    expect(await readAll(two)).toBe('b');
  });

  it('keeps nothing past the limit, or with limit 0, and then reads only as the reader asks', async () => {
    const over = new SharedBody(source(['abc', 'def', 'ghi']).iterable, 4);
    const reader = over.reader()!;
    expect(await over.kept).toBeUndefined();
    expect(over.shareable).toBe(false);
    expect(await readAll(reader)).toBe('abcdefghi');
    const { iterable, state } = source(['abc', 'def']);
    const none = new SharedBody(iterable, 0);
    const only = none.reader()!;
    expect(await none.kept).toBeUndefined();
    expect((await only.next()).value?.toString()).toBe('abc');
    expect(state.asked).toBe(1);
    expect(await readAll(only)).toBe('def');
    expect(heldBodyBytes()).toBe(0);
  });

  it('past the limit, the upstream ends once the last reader lets go', async () => {
    const { iterable, state } = source(['abc', 'def', 'ghi']);
    const body = new SharedBody(iterable, 0);
    const reader = body.reader()!;
    await reader.next();
    reader.release();
    expect(state.returned).toBe(true);
    expect(heldBodyBytes()).toBe(0);
  });

  it('a body nobody reads any more is abandoned on request, and kept is undefined', async () => {
    const open = gate();
    const { iterable, state } = source(['a', 'b'], { open: open.promise });
    const body = new SharedBody(iterable, 100);
    body.abandonIfUnread();
    expect(await body.kept).toBeUndefined();
    expect(state.returned).toBe(true);
    open.release();
  });

  it('passes a failed read to every reader and to the store', async () => {
    const body = new SharedBody(source(['a', 'b'], { failAt: 1 }).iterable, 100);
    const reader = body.reader()!;
    await expect(readAll(reader)).rejects.toThrow('reset');
    await expect(body.kept).rejects.toThrow('reset');
    expect(heldBodyBytes()).toBe(0);
  });
});

/** A stream source, as undici's response body is: read by its events (`#flow`), not its iterator. */
function streamSource(): { stream: PassThrough; destroyed: () => boolean } {
  const stream = new PassThrough();
  return { stream, destroyed: () => stream.destroyed };
}

describe('SharedBody over a stream (issue 14: read by its events)', () => {
  it('keeps the whole body, and a reader polls what has come without waiting', async () => {
    const { stream } = streamSource();
    const body = new SharedBody(stream, 100);
    const reader = body.reader()!;
    expect(reader.poll()).toBeUndefined();
    stream.write('ab');
    stream.end('c');
    expect((await body.kept)?.toString()).toBe('abc');
    expect(reader.poll()?.toString()).toBe('abc');
    expect(reader.poll()).toBeNull();
    expect(heldBodyBytes()).toBe(0);
  });

  it('past the limit, reads on only as the readers take (the stream is paused meanwhile)', async () => {
    const { stream } = streamSource();
    const body = new SharedBody(stream, 2);
    const reader = body.reader()!;
    stream.write('abc');
    expect(await body.kept).toBeUndefined();
    await new Promise((resolve) => setImmediate(resolve));
    expect(stream.isPaused()).toBe(true);
    expect((await reader.next()).value?.toString()).toBe('abc');
    stream.end('def');
    expect(await readAll(reader)).toBe('def');
    expect(heldBodyBytes()).toBe(0);
  });

  it('with limit 0, reads nothing until a reader asks', async () => {
    const { stream } = streamSource();
    const body = new SharedBody(stream, 0);
    stream.write('abc');
    await new Promise((resolve) => setImmediate(resolve));
    expect(stream.readableLength).toBe(3);
    const reader = body.reader()!;
    stream.end();
    expect(await readAll(reader)).toBe('abc');
  });

  it('a failed stream fails every reader and the store; one destroyed without an error too', async () => {
    const failing = streamSource();
    const body = new SharedBody(failing.stream, 100);
    const reader = body.reader()!;
    failing.stream.write('a');
    failing.stream.destroy(new Error('reset'));
    await expect(readAll(reader)).rejects.toThrow('reset');
    await expect(body.kept).rejects.toThrow('reset');
    const cut = streamSource();
    const premature = new SharedBody(cut.stream, 100);
    cut.stream.destroy();
    await expect(premature.kept).rejects.toThrow('Premature close');
    expect(heldBodyBytes()).toBe(0);
  });

  it('a body nobody reads any more is abandoned on request: the stream is destroyed', async () => {
    const { stream, destroyed } = streamSource();
    const body = new SharedBody(stream, 100);
    stream.write('a');
    body.abandonIfUnread();
    expect(await body.kept).toBeUndefined();
    expect(destroyed()).toBe(true);
    expect(heldBodyBytes()).toBe(0);
  });
});
