import diagnostics from 'node:diagnostics_channel';
import { LRUCache } from 'lru-cache';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Store } from '../../../src/cache/store.js';
import type { RemovalEvent, RemovalReason } from '../../../src/cache/types.js';
import { ManualClock } from '../../../src/clock.js';

const body = (n: number): Buffer => Buffer.alloc(n, 1);

function makeStore(maxBytes = 1_000_000, maxEntryBytes = 100_000) {
  const clock = new ManualClock();
  const store = new Store({ maxBytes, maxEntryBytes, clock });
  const removals: RemovalReason[] = [];
  const onRemove = (msg: unknown): void => {
    const event = msg as RemovalEvent;
    if (event.store === store) removals.push(event.reason);
  };
  diagnostics.subscribe('sidecache:cache:remove', onRemove);
  cleanups.push(() => diagnostics.unsubscribe('sidecache:cache:remove', onRemove));
  return { clock, store, removals };
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const fn of cleanups.splice(0)) fn();
});

describe('Store degraded while a bus is down (issue 17)', () => {
  it('with maxAgeMs 0 (bypass) serves nothing and stores nothing, replacing the older entry; entries return when it ends', () => {
    const { store } = makeStore();
    store.set('old', { body: body(1), ttlMs: 60_000 });
    store.degrade({ reason: 'bus-down', maxAgeMs: 0 });
    expect(store.bypassing).toBe(true);
    expect(store.get('old')).toBeUndefined();
    expect(store.withholds('old')).toBe(true);
    expect(store.withholds('absent')).toBe(false);
    expect(store.set('new', { body: body(1), ttlMs: 60_000 })).toBe('bypassed');
    expect(store.set('old', { body: body(2), ttlMs: 60_000 })).toBe('bypassed');
    expect(store.has('old')).toBe(false);
    store.degrade(undefined);
    expect(store.has('new')).toBe(false);
    expect(store.set('new', { body: body(1), ttlMs: 60_000 })).toBe('stored');
    expect(store.get('new')).toBeDefined();
  });

  it('with maxAgeMs serves entries stored less than that long ago, and stores new ones', () => {
    const { clock, store } = makeStore();
    store.set('old', { body: body(1), ttlMs: 600_000 });
    clock.advance(20_000);
    store.set('young', { body: body(1), ttlMs: 600_000 });
    store.degrade({ reason: 'bus-down', maxAgeMs: 30_000 });
    expect(store.bypassing).toBe(false);
    expect(store.get('young')).toBeDefined();
    expect(store.get('old')).toBeDefined();
    clock.advance(10_000);
    expect(store.get('old')).toBeUndefined();
    expect(store.withholds('old')).toBe(true);
    expect(store.get('young')).toBeDefined();
    expect(store.set('old', { body: body(1), ttlMs: 600_000 })).toBe('stored');
    expect(store.get('old')).toBeDefined();
    clock.advance(30_000);
    expect(store.get('young')).toBeUndefined();
  });
});

describe('Store entries', () => {
  it('keeps prepared bytes with storedAt, freshUntil and staleUntil from the injected clock', () => {
    const { clock, store } = makeStore();
    expect(store.set('k', { body: body(10), ttlMs: 1000, staleMs: 500, tags: ['a'] })).toBe('stored');
    const entry = store.get('k')!;
    expect(entry.storedAt).toBe(clock.now());
    expect(entry.freshUntil).toBe(clock.now() + 1000);
    expect(entry.staleUntil).toBe(clock.now() + 1500);
    expect(store.isFresh(entry)).toBe(true);
    clock.advance(1000);
    expect(store.isFresh(store.get('k')!)).toBe(false);
    clock.advance(499);
    expect(store.get('k')).toBeDefined();
    clock.advance(1);
    expect(store.get('k')).toBeUndefined();
  });

  it('stores lists of pre-encoded frames and counts key, tags, metadata and body', () => {
    const { store } = makeStore();
    store.set('frames', { body: [body(100), body(50)], ttlMs: 1000, tags: ['t'], meta: { x: 1 }, metaBytes: 30 });
    const entry = store.get('frames')!;
    expect(entry.bytes).toBeGreaterThan(100 + 50 + 30 + 'frames'.length + 't'.length);
    expect(store.bytes).toBe(entry.bytes);
  });

  it('refuses entries over maxEntryBytes and drops the older entry under that key', () => {
    const { store } = makeStore(1_000_000, 1000);
    store.set('k', { body: body(10), ttlMs: 1000 });
    expect(store.set('k', { body: body(2000), ttlMs: 1000 })).toBe('too-large');
    expect(store.get('k')).toBeUndefined();
    expect(store.size).toBe(0);
  });

  it('refuses entries with no lifetime', () => {
    const { store } = makeStore();
    expect(store.set('k', { body: body(1), ttlMs: 0 })).toBe('expired');
    expect(store.size).toBe(0);
  });

  it('evicts least recently used entries to stay under maxBytes, reason size', () => {
    const { store, removals } = makeStore(5000, 2000);
    for (let i = 0; i < 10; i++) store.set(`k${i}`, { body: body(1000), ttlMs: 10_000, tags: ['all'] });
    expect(store.bytes).toBeLessThanOrEqual(5000);
    expect(store.get('k9')).toBeDefined();
    expect(store.get('k0')).toBeUndefined();
    expect(removals.every((r) => r === 'size')).toBe(true);
    expect(removals.length).toBe(10 - store.size);
    const [first] = [...store.indexedTags()];
    expect(first?.[1].size).toBe(store.size);
  });

  it('reports replaced and ttl removals, and purgeStale drops expired entries', () => {
    const { clock, store, removals } = makeStore();
    store.set('a', { body: body(1), ttlMs: 100, tags: ['x'] });
    store.set('a', { body: body(2), ttlMs: 100, tags: ['y'] });
    expect(removals).toEqual(['replaced']);
    expect(new Map(store.indexedTags()).has('x')).toBe(false);
    clock.advance(101);
    expect(store.purgeStale()).toBe(1);
    expect(removals).toEqual(['replaced', 'ttl']);
    expect([...store.indexedTags()]).toEqual([]);
  });
});

describe('Store.invalidate', () => {
  it('removes by tag, key, prefix and all, counting each entry once', () => {
    const { store, removals } = makeStore();
    store.set('u1', { body: body(1), ttlMs: 1000, tags: ['users', 'user:1'], path: '/users/1' });
    store.set('u2', { body: body(1), ttlMs: 1000, tags: ['users', 'user:2'], path: '/users/2?x=1' });
    store.set('o1', { body: body(1), ttlMs: 1000, tags: ['orders'], path: '/orders/1' });
    store.set('pg', { body: body(1), ttlMs: 1000, tags: ['table:accounts'] });
    expect(store.invalidate({ tags: ['users', 'user:1'] })).toBe(2);
    expect(store.invalidate({ tags: ['nothing'] })).toBe(0);
    expect(store.invalidate({ keys: ['pg', 'missing'] })).toBe(1);
    expect(store.invalidate({ all: true })).toBe(1);
    expect(removals).toEqual(['invalidation', 'invalidation', 'invalidation', 'invalidation']);
    expect([...store.indexedTags()]).toEqual([]);
  });

  it('matches prefixes on path boundaries and inside a segment', () => {
    const { store } = makeStore();
    for (const path of ['/users/1', '/users/12/posts', '/users', '/userstats', '/orders/1']) {
      store.set(`k${path}`, { body: body(1), ttlMs: 1000, path });
    }
    expect(store.invalidate({ prefixes: ['/users/1'] })).toBe(2);
    expect(store.invalidate({ prefixes: ['/users'] })).toBe(2);
    expect(store.invalidate({ prefixes: ['no-slash'] })).toBe(0);
    expect(store.has('k/orders/1')).toBe(true);
  });

  it('costs work in proportion to the entries removed, not the cache size', () => {
    const { store } = makeStore(1 << 30, 1 << 20);
    for (let i = 0; i < 100_000; i++) store.set(`k${i}`, { body: body(8), ttlMs: 60_000, tags: [`t${i % 1000}`] });
    // Counted, not timed: every walk over the cache (lru-cache's iterators, clear, purgeStale) and
    // every walk over a Map or Set larger than one tag's 100 keys (the cache's key map, the tag
    // index), and every delete.
    const walks = [
      'entries',
      'keys',
      'values',
      'rentries',
      'rkeys',
      'rvalues',
      'forEach',
      'rforEach',
      'find',
      'dump',
      'clear',
      'purgeStale',
      Symbol.iterator,
    ] as const;
    const lruWalks = walks.map((name) => vi.spyOn(LRUCache.prototype, name as 'entries'));
    const collectionWalks = [Map.prototype, Set.prototype].flatMap((proto) =>
      (['entries', 'keys', 'values', 'forEach', Symbol.iterator] as const).map((name) => vi.spyOn(proto as Map<unknown, unknown>, name as 'entries')),
    );
    const deletes = vi.spyOn(LRUCache.prototype, 'delete');
    let counted: { lruWalks: number; largeWalks: number; deletes: number };
    try {
      for (let i = 0; i < 100; i++) store.invalidate({ tags: [`t${i}`] });
      // Read before mockRestore(), which clears what the spies recorded.
      counted = {
        lruWalks: lruWalks.reduce((n, spy) => n + spy.mock.calls.length, 0),
        largeWalks: collectionWalks.flatMap((spy) => spy.mock.contexts).filter((c) => (c as Map<unknown, unknown>).size > 100).length,
        deletes: deletes.mock.calls.length,
      };
    } finally {
      for (const spy of [...lruWalks, ...collectionWalks, deletes]) spy.mockRestore();
    }
    expect(store.size).toBe(100_000 - 100 * 100);
    expect(counted).toEqual({ lruWalks: 0, largeWalks: 0, deletes: 100 * 100 });
  });
});
