import { describe, expect, it } from 'vitest';
import { BodyHandoff } from '../../../../src/upstreams/http/handoff.js';

const chunk = (text: string) => Buffer.from(text);

/** Whether `promise` settled by the time queued microtasks and one macrotask ran. */
async function settled(promise: Promise<unknown> | undefined): Promise<boolean> {
  if (promise === undefined) return true;
  let done = false;
  void promise.then(() => (done = true));
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

describe('BodyHandoff', () => {
  it('hands chunks over in order, and the loader waits until the requester asks for the next', async () => {
    const handoff = new BodyHandoff();
    const given = handoff.give(chunk('a'));
    expect(await settled(given)).toBe(false);
    expect(await handoff.next()).toEqual({ value: chunk('a'), done: false });
    expect(await settled(given)).toBe(false);
    const asked = handoff.next();
    expect(await settled(given)).toBe(true);
    const second = handoff.give(chunk('b'));
    expect(await asked).toEqual({ value: chunk('b'), done: false });
    const last = handoff.next();
    expect(await settled(second)).toBe(true);
    handoff.end();
    expect(await last).toEqual({ value: undefined, done: true });
  });

  it('relays a body to a for-await reader', async () => {
    const handoff = new BodyHandoff();
    const read = (async () => {
      const parts: string[] = [];
      for await (const part of handoff) parts.push(part.toString());
      return parts;
    })();
    for (const part of ['x', 'y', 'z']) await handoff.give(chunk(part));
    handoff.end();
    expect(await read).toEqual(['x', 'y', 'z']);
  });

  it("passes the loader's failure to the requester, waiting or not", async () => {
    const waiting = new BodyHandoff();
    const next = waiting.next();
    waiting.fail(new Error('reset'));
    await expect(next).rejects.toThrow('reset');

    const later = new BodyHandoff();
    later.fail(new Error('reset'));
    await expect(later.next()).rejects.toThrow('reset');
  });

  it('once the requester lets go, the loader no longer waits and the requester reads nothing more', async () => {
    const handoff = new BodyHandoff();
    const given = handoff.give(chunk('a'));
    handoff.release();
    expect(await settled(given)).toBe(true);
    expect(handoff.give(chunk('b'))).toBeUndefined();
    handoff.fail(new Error('ignored'));
    expect(await handoff.next()).toEqual({ value: undefined, done: true });
  });

  it('a for-await that breaks lets go', async () => {
    const handoff = new BodyHandoff();
    const first = handoff.give(chunk('a'));
    for await (const part of handoff) {
      expect(part.toString()).toBe('a');
      break;
    }
    expect(await settled(first)).toBe(true);
    expect(handoff.give(chunk('b'))).toBeUndefined();
  });
});
