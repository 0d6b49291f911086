import { describe, expect, it } from 'vitest';
import { Store } from '../../../src/cache/store.js';
import { Space } from '../../../src/cache/types.js';
import type { EntryInput } from '../../../src/cache/types.js';
import { ManualClock } from '../../../src/clock.js';
import { waitFor } from '../../helpers/wait.js';

function makeStore() {
  return new Store({ maxBytes: 10_000_000, maxEntryBytes: 1_000_000, clock: new ManualClock() });
}

/** A loader the test releases by hand, counting how often it ran. */
function gate(input: EntryInput | null = { body: Buffer.from('v'), ttlMs: 1000 }) {
  let calls = 0;
  let release!: () => void;
  let fail!: (err: Error) => void;
  const done = new Promise<EntryInput | null>((resolve, reject) => {
    release = () => resolve(input);
    fail = reject;
  });
  const loader = (): Promise<EntryInput | null> => {
    calls++;
    return done;
  };
  return { loader, release: () => release(), fail: (e: Error) => fail(e), calls: () => calls };
}

describe('Store.fill single-flight', () => {
  it('runs the loader once for 200 concurrent callers, all of whom get the entry', async () => {
    const store = makeStore();
    const g = gate();
    const all = Array.from({ length: 200 }, () => store.fill('k', ['t'], g.loader));
    g.release();
    const results = await Promise.all(all);
    expect(g.calls()).toBe(1);
    expect(results.filter((r) => r.leader)).toHaveLength(1);
    expect(results.every((r) => r.entry?.body.toString() === 'v' && r.stored)).toBe(true);
    expect(store.get('k')?.tags).toEqual(['t']);
    expect(store.inFlight).toBe(0);
  });

  it('hands a loader error to all 200 callers and stores nothing', async () => {
    const store = makeStore();
    const g = gate();
    const all = Array.from({ length: 200 }, () => store.fill('k', ['t'], g.loader));
    g.fail(new Error('upstream down'));
    const settled = await Promise.allSettled(all);
    expect(g.calls()).toBe(1);
    expect(settled.every((s) => s.status === 'rejected' && (s.reason as Error).message === 'upstream down')).toBe(true);
    expect(store.size).toBe(0);
    expect(store.inFlight).toBe(0);
  });

  it('does not store a fill whose tag was invalidated mid-flight, and waiters fetch anew', async () => {
    const store = makeStore();
    const first = gate({ body: Buffer.from('old'), ttlMs: 1000, tags: ['late-tag'] });
    const leader = store.fill('k', ['t'], first.loader);
    const waiter = store.fill('k', ['t'], () => Promise.resolve({ body: Buffer.from('new'), ttlMs: 1000 }));
    // The tag is only known from the response (like Surrogate-Key): it must still count.
    store.invalidate({ tags: ['late-tag'] });
    first.release();
    const lead = await leader;
    expect(lead).toMatchObject({ leader: true, stored: false, reason: 'invalidated' });
    expect(lead.entry?.body.toString()).toBe('old');
    const wait = await waiter;
    expect(wait.entry?.body.toString()).toBe('new');
    expect(store.get('k')?.body.toString()).toBe('new');
  });

  it('does not store a fill whose key was invalidated or when all was invalidated', async () => {
    const store = makeStore();
    const a = gate();
    const pa = store.fill('a', [], a.loader);
    store.invalidate({ keys: ['a'] });
    a.release();
    expect((await pa).stored).toBe(false);
    const b = gate();
    const pb = store.fill('b', ['x'], b.loader);
    store.invalidate({ all: true });
    b.release();
    expect((await pb).stored).toBe(false);
    expect(store.size).toBe(0);
  });

  it('does not store a fill under an invalidated path prefix', async () => {
    const store = makeStore();
    const g = gate({ body: Buffer.from('v'), ttlMs: 1000, path: '/users/7' });
    const p = store.fill('k', [], g.loader);
    store.invalidate({ prefixes: ['/users/'] });
    g.release();
    expect((await p).stored).toBe(false);
  });

  it('stores a fill invalidated before it began', async () => {
    const store = makeStore();
    store.invalidate({ tags: ['t'] });
    const result = await store.fill('k', ['t'], () => Promise.resolve({ body: Buffer.from('v'), ttlMs: 1000 }));
    expect(result.stored).toBe(true);
  });

  it('lets a waiter give up at its deadline without cancelling the others', async () => {
    const store = makeStore();
    const g = gate();
    const leader = store.fill('k', [], g.loader);
    const impatient = store.fill('k', [], g.loader, { timeoutMs: 20 });
    const patient = store.fill('k', [], g.loader);
    await expect(impatient).rejects.toMatchObject({ code: 'SC_ERR_FILL_TIMEOUT' });
    g.release();
    expect((await leader).stored).toBe(true);
    expect((await patient).entry?.body.toString()).toBe('v');
    expect(g.calls()).toBe(1);
  });

  it('lets a waiter give up on an abort signal', async () => {
    const store = makeStore();
    const g = gate();
    const leader = store.fill('k', [], g.loader);
    const ac = new AbortController();
    const aborted = store.fill('k', [], g.loader, { signal: ac.signal });
    ac.abort();
    await expect(aborted).rejects.toMatchObject({ code: 'SC_ERR_FILL_TIMEOUT' });
    g.release();
    expect((await leader).stored).toBe(true);
  });

  it('does not share an unshareable result: waiters get a null entry', async () => {
    const store = makeStore();
    const g = gate(null);
    const all = [store.fill('k', [], g.loader), store.fill('k', [], g.loader)];
    g.release();
    const [lead, wait] = await Promise.all(all);
    expect(lead).toMatchObject({ leader: true, entry: null, reason: 'unshareable' });
    expect(wait).toMatchObject({ leader: false, entry: null, reason: 'unshareable' });
    expect(store.size).toBe(0);
  });

  it('answers busy past maxWaiters instead of queueing', async () => {
    const store = makeStore();
    const g = gate();
    const leader = store.fill('k', [], g.loader);
    const one = store.fill('k', [], g.loader, { maxWaiters: 1 });
    const busy = await store.fill('k', [], g.loader, { maxWaiters: 1 });
    expect(busy).toMatchObject({ entry: null, reason: 'busy' });
    g.release();
    await Promise.all([leader, one]);
  });

  it('survives every caller giving up before the loader fails (no unhandled rejection)', async () => {
    const store = makeStore();
    const g = gate();
    await expect(store.fill('k', [], g.loader, { timeoutMs: 1 })).rejects.toMatchObject({ code: 'SC_ERR_FILL_TIMEOUT' });
    g.fail(new Error('late failure'));
    // The flight ends once the failure has run through it; an unhandled rejection fails the run.
    await waitFor(() => store.inFlight === 0, 'the flight to end after its late failure');
  });

  it('tells whether a fill is in flight and how many wait on it', async () => {
    const store = makeStore();
    const g = gate();
    expect(store.flightOf('k')).toBeUndefined();
    const leader = store.fill('k', [], g.loader);
    expect(store.flightOf('k')?.waiters).toBe(0);
    const waiter = store.fill('k', [], g.loader);
    expect(store.flightOf('k')?.waiters).toBe(1);
    g.release();
    await Promise.all([leader, waiter]);
    expect(store.flightOf('k')).toBeUndefined();
  });

  it('hands a waiter no entry of another space than its own, and reads through a space only its entries', async () => {
    const store = makeStore();
    const mine = new Space<{ n: number }>('mine');
    const other = new Space<undefined>('other');
    const g = gate();
    const leader = store.fill('k', [], () => g.loader().then((input) => input && { ...input, meta: { n: 1 } }), { space: mine });
    const stranger = store.fill<undefined>('k', [], () => Promise.resolve({ body: Buffer.from('x'), ttlMs: 1000 }), { space: other });
    g.release();
    expect((await leader).entry?.meta.n).toBe(1);
    expect(await stranger).toMatchObject({ entry: null, reason: 'unshareable' });
    expect(store.get('k', mine)?.meta.n).toBe(1);
    expect(store.get('k', other)).toBeUndefined();
  });
});
