/** The store listing behind GET /cache/entries: hits per entry, top-N, and a scan that yields. */
import { describe, expect, it } from 'vitest';
import { type DescribeKey, listEntries, shownTag } from '../../../src/admin/entries.js';
import { Store } from '../../../src/cache/store.js';
import { ManualClock } from '../../../src/clock.js';

const describeKey: DescribeKey = (key) => ({ protocol: 'http', listener: 'api', url: key });

function filled(count: number): { store: Store; clock: ManualClock } {
  const clock = new ManualClock(1_000_000);
  const store = new Store({ maxBytes: 64 * 1024 ** 2, maxEntryBytes: 1024 ** 2, clock });
  for (let i = 0; i < count; i++) store.set(`/k${i}`, { body: Buffer.alloc(i % 7), ttlMs: 60_000 });
  return { store, clock };
}

describe('listEntries', () => {
  it('counts a hit on each lookup that finds the entry, and lists the top entries by hits, bytes or age', async () => {
    const { store, clock } = filled(10);
    for (let i = 0; i < 3; i++) store.get('/k4');
    store.get('/k2');
    store.get('/absent');
    clock.advance(5000);
    store.set('/young', { body: Buffer.alloc(0), ttlMs: 60_000 });
    const list = async (sort: 'hits' | 'bytes' | 'age', limit: number) =>
      (await listEntries(store, clock, describeKey, { sort, limit, reveal: false })).entries.map((e) => [e.key.url, e.hits]);
    expect(await list('hits', 2)).toEqual([
      ['/k4', 3],
      ['/k2', 1],
    ]);
    expect((await list('bytes', 1))[0]![0]).toBe('/k6');
    expect((await list('age', 11)).at(-1)).toEqual(['/young', 0]);
    // Listing is no lookup: it counts no hit.
    expect(await list('hits', 1)).toEqual([['/k4', 3]]);
  });

  it('reads a large store in slices, letting the event loop run between them', async () => {
    const { store, clock } = filled(5000);
    let turns = 0;
    const tick = (): void => {
      turns++;
      if (!done) setImmediate(tick);
    };
    let done = false;
    setImmediate(tick);
    const listed = await listEntries(store, clock, describeKey, { sort: 'hits', limit: 10, reveal: false });
    done = true;
    expect(listed).toMatchObject({ scanned: 5000, matched: 5000 });
    expect(listed.entries).toHaveLength(10);
    expect(turns).toBeGreaterThanOrEqual(4);
  });

  it('shows derived tags without their NUL, and a URL tag without its query unless revealed', () => {
    expect(shownTag('users', false)).toEqual(['users']);
    expect(shownTag('\u0000pgdb:app', false)).toEqual(['pgdb:app']);
    expect(shownTag('\u0000url:api\u0000/p?token=x', false)).toEqual(['url:api /p']);
    expect(shownTag('\u0000url:api\u0000/p?token=x', true)).toEqual(['url:api /p?token=x']);
  });
});
