import diagnostics from 'node:diagnostics_channel';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Store } from '../../../src/cache/store.js';
import type { RemovalEvent, RemovalReason } from '../../../src/cache/types.js';
import { ManualClock } from '../../../src/clock.js';

const key = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h');
const tag = fc.constantFrom('t1', 't2', 't3', 't4');
const op = fc.oneof(
  fc.record({
    op: fc.constant('set' as const),
    key,
    size: fc.integer({ min: 0, max: 3000 }),
    ttl: fc.integer({ min: 0, max: 500 }),
    stale: fc.integer({ min: 0, max: 500 }),
    tags: fc.uniqueArray(tag, { maxLength: 3 }),
    path: fc.option(fc.constantFrom('/x/1', '/x/2', '/y/1'), { nil: undefined }),
  }),
  fc.record({ op: fc.constant('get' as const), key }),
  fc.record({ op: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 400 }) }),
  fc.record({
    op: fc.constant('invalidate' as const),
    tags: fc.uniqueArray(tag, { maxLength: 2 }),
    keys: fc.uniqueArray(key, { maxLength: 2 }),
    prefixes: fc.uniqueArray(fc.constantFrom('/x/', '/y', '/'), { maxLength: 1 }),
    all: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
  }),
  fc.record({ op: fc.constant('purge' as const) }),
);

describe('Store invariants (property)', () => {
  it('never exceeds maxBytes, never serves expired as fresh, keeps the tag index exact, counts every removal', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 120 }), (ops) => {
        const clock = new ManualClock();
        const maxBytes = 8000;
        const store = new Store({ maxBytes, maxEntryBytes: 2500, clock });
        const removals = new Map<RemovalReason, number>();
        const onRemove = (msg: unknown): void => {
          const e = msg as RemovalEvent;
          if (e.store === store) removals.set(e.reason, (removals.get(e.reason) ?? 0) + 1);
        };
        diagnostics.subscribe('sidecache:cache:remove', onRemove);
        let stored = 0;
        let invalidatedReported = 0;
        try {
          for (const step of ops) {
            if (step.op === 'set') {
              const r = store.set(step.key, { body: Buffer.alloc(step.size), ttlMs: step.ttl, staleMs: step.stale, tags: step.tags, path: step.path });
              if (r === 'stored') stored++;
            } else if (step.op === 'get') {
              const entry = store.get(step.key);
              if (entry !== undefined) {
                expect(clock.now()).toBeLessThan(entry.staleUntil);
                if (store.isFresh(entry)) expect(clock.now()).toBeLessThan(entry.freshUntil);
              }
            } else if (step.op === 'advance') {
              clock.advance(step.ms);
            } else if (step.op === 'invalidate') {
              const before = removals.get('invalidation') ?? 0;
              const n = store.invalidate(step);
              invalidatedReported += n;
              expect((removals.get('invalidation') ?? 0) - before).toBe(n);
            } else {
              store.purgeStale();
            }
            expect(store.bytes).toBeLessThanOrEqual(maxBytes);
            for (const [t, keys] of store.indexedTags()) {
              expect(keys.size).toBeGreaterThan(0);
              for (const k of keys) {
                expect(store.has(k), `tag ${t} points at missing key ${k}`).toBe(true);
              }
            }
          }
          const removed = [...removals.values()].reduce((a, b) => a + b, 0);
          // Every stored entry is either still there or was removed exactly once, with a reason.
          expect(stored).toBe(store.size + removed);
          expect(invalidatedReported).toBeLessThanOrEqual(removals.get('invalidation') ?? 0);
        } finally {
          diagnostics.unsubscribe('sidecache:cache:remove', onRemove);
        }
      }),
      { numRuns: 300 },
    );
  });
});
