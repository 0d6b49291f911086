import { describe, expect, it } from 'vitest';
import { BodyTee } from '../../../../src/upstreams/http/body-tee.js';

/** A body that yields `parts` one by one and counts how many it was asked for. */
function source(parts: string[], failAt?: number) {
  const state = { asked: 0 };
  const iterable: AsyncIterable<Buffer> = {
    [Symbol.asyncIterator]: () => ({
      next: async () => {
        const i = state.asked++;
        if (i === failAt) throw new Error('reset');
        return i < parts.length ? { value: Buffer.from(parts[i]!), done: false } : { value: undefined, done: true };
      },
    }),
  };
  return { iterable, state };
}

async function readAll(tee: BodyTee): Promise<string[]> {
  const parts: string[] = [];
  for await (const part of tee) parts.push(part.toString());
  return parts;
}

describe('BodyTee', () => {
  it('reads the upstream only as the requester asks, and keeps the whole body for the store', async () => {
    const { iterable, state } = source(['a', 'b', 'c']);
    const tee = new BodyTee(iterable, 100);
    expect(state.asked).toBe(0);
    expect((await tee.next()).value?.toString()).toBe('a');
    expect(state.asked).toBe(1);
    expect(await readAll(tee)).toEqual(['b', 'c']);
    expect((await tee.kept)?.toString()).toBe('abc');
  });

  it('keeps nothing past the limit, or with limit 0, while the requester still gets every chunk', async () => {
    const over = new BodyTee(source(['abc', 'def']).iterable, 4);
    expect(await readAll(over)).toEqual(['abc', 'def']);
    expect(await over.kept).toBeUndefined();
    const none = new BodyTee(source(['abc']).iterable, 0);
    expect(await readAll(none)).toEqual(['abc']);
    expect(await none.kept).toBeUndefined();
  });

  it('reads the rest for the store once the requester lets go (a for-await that breaks)', async () => {
    const { iterable, state } = source(['a', 'b', 'c']);
    const tee = new BodyTee(iterable, 100);
    for await (const part of tee) {
      expect(part.toString()).toBe('a');
      break;
    }
    expect((await tee.kept)?.toString()).toBe('abc');
    expect(state.asked).toBe(4);
    expect(await tee.next()).toEqual({ value: undefined, done: true });
  });

  it('without a requester, release() alone reads the body for the store', async () => {
    const tee = new BodyTee(source(['x', 'y']).iterable, 100);
    tee.release();
    tee.release();
    expect((await tee.kept)?.toString()).toBe('xy');
  });

  it("passes a failed read to both sides, and after a let-go to the store's side alone", async () => {
    const read = new BodyTee(source(['a', 'b'], 1).iterable, 100);
    await expect(readAll(read)).rejects.toThrow('reset');
    await expect(read.kept).rejects.toThrow('reset');
    const released = new BodyTee(source(['a', 'b'], 1).iterable, 100);
    released.release();
    await expect(released.kept).rejects.toThrow('reset');
  });
});
