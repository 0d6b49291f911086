// Micro-benchmark of the store: hit, set, and invalidating one tag among 100k entries.
// Each row is printed beside a baseline measured in the same run, with the ratio:
//   get/set against a bare lru-cache (the ceiling: the store is a wrapper around it);
//   invalidate-one-tag against a scan of every entry (what a store without a tag index does).
import { LRUCache } from 'lru-cache';
import { Store } from '../dist/cache/store.js';
import { realClock } from '../dist/clock.js';

const N = 100_000;
const body = Buffer.alloc(256, 1);

function opsPerSec(fn, iterations) {
  fn(Math.min(iterations, 1000)); // warm up
  const t0 = process.hrtime.bigint();
  fn(iterations);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return iterations / seconds;
}

function row(name, ours, baseline, baselineName) {
  const fmt = (n) => Math.round(n).toLocaleString('en-US').padStart(14);
  console.log(`${name.padEnd(28)} ${fmt(ours)} ops/s   ${baselineName.padEnd(22)} ${fmt(baseline)} ops/s   ratio ${(ours / baseline).toFixed(2)}`);
}

const store = new Store({ maxBytes: 1 << 30, maxEntryBytes: 1 << 20, clock: realClock });
const lru = new LRUCache({ maxSize: 1 << 30, sizeCalculation: (v) => v.length, ttl: 60_000, ttlResolution: 0 });
const keys = Array.from({ length: N }, (_, i) => `http:api:GET:/items/${i}`);
for (let i = 0; i < N; i++) {
  store.set(keys[i], { body, ttlMs: 60_000, tags: [`t${i % 1000}`] });
  lru.set(keys[i], body);
}

let sink = 0;
row(
  'get (hit)',
  opsPerSec((n) => {
    for (let i = 0; i < n; i++) sink += store.get(keys[i % N]).bytes;
  }, 2_000_000),
  opsPerSec((n) => {
    for (let i = 0; i < n; i++) sink += lru.get(keys[i % N]).length;
  }, 2_000_000),
  'bare lru-cache get',
);
row(
  'set (replace, 1 tag)',
  opsPerSec((n) => {
    for (let i = 0; i < n; i++) store.set(keys[i % N], { body, ttlMs: 60_000, tags: [`t${i % 1000}`] });
  }, 300_000),
  opsPerSec((n) => {
    for (let i = 0; i < n; i++) lru.set(keys[i % N], body);
  }, 300_000),
  'bare lru-cache set',
);

// Each invalidation removes the 100 entries of one tag; refill them so every round does the same work.
let round = 0;
const invalidateRate = opsPerSec((n) => {
  for (let r = 0; r < n; r++, round++) {
    const t = round % 1000;
    store.invalidate({ tags: [`t${t}`] });
    for (let i = t; i < N; i += 1000) store.set(keys[i], { body, ttlMs: 60_000, tags: [`t${t}`] });
  }
}, 2000);
const scanRate = opsPerSec((n) => {
  for (let r = 0; r < n; r++) {
    const t = `t${r % 1000}`;
    for (const [, entry] of lru.entries()) if (entry.length === -1 || t === '') sink++;
  }
}, 20);
row('invalidate 1 tag of 1000 (+refill)', invalidateRate, scanRate, 'scan of 100k entries');
if (sink === 42) console.log('');
