import diagnostics from 'node:diagnostics_channel';
import type { Store } from '../cache/store.js';
import { channels, type InvalidationEvent } from '../events.js';
import { servingMode } from '../invalidation/while-down.js';
import type { Metrics } from '../metrics/registry.js';
import { summarizeCache } from './cache-summary.js';

const KEEP = 20;

interface Recent {
  time: string;
  source: string;
  removed: number;
}

/** The last invalidations applied to one store, for the live page. */
export class RecentInvalidations {
  readonly #items: Recent[] = [];
  readonly #unsubscribe: () => void;

  constructor(store: Store) {
    const handler = (message: unknown): void => {
      const e = message as InvalidationEvent;
      if (e.store !== store) return;
      this.#items.unshift({ time: new Date().toISOString(), source: e.source, removed: e.removed });
      this.#items.length = Math.min(this.#items.length, KEEP);
    };
    diagnostics.subscribe(channels.invalidation.name, handler);
    this.#unsubscribe = () => diagnostics.unsubscribe(channels.invalidation.name, handler);
  }

  list(): readonly Recent[] {
    return this.#items;
  }

  close(): void {
    this.#unsubscribe();
  }
}

/** `GET /live`: what the live page polls every second; rates are derived from the counters it returns. */
export async function liveDocument(store: Store, metrics: Metrics, recent: RecentInvalidations): Promise<unknown> {
  const summary = await summarizeCache(store, metrics);
  let durationSum = 0;
  let durationCount = 0;
  for (const { metricName, value } of (await metrics.requestDuration.get()).values) {
    if (metricName?.endsWith('_sum')) durationSum += value;
    if (metricName?.endsWith('_count')) durationCount += value;
  }
  // `degraded`: how the cache serves while a bus is down (`whileDown`), null when it is not.
  const degraded = servingMode(store.degradation) ?? null;
  return { time: Date.now(), ...summary, durationSum, durationCount, invalidations: recent.list(), degraded };
}

/** A self-contained page: no build step, no external assets. */
export const LIVE_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sidecache</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2rem;color:#222;background:#fafafa}
h1{font-size:1.3rem;margin:0 0 1rem}
.cards{display:flex;gap:1rem;flex-wrap:wrap;margin-bottom:1.5rem}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.8rem 1rem;min-width:9rem}
.card b{display:block;font-size:1.6rem}
table{border-collapse:collapse;background:#fff;margin-bottom:1.5rem}
td,th{border:1px solid #ddd;padding:.3rem .6rem;text-align:right}
th{background:#f0f0f0}
td:first-child,th:first-child{text-align:left}
#status{color:#888}
caption{text-align:left;padding:.3rem 0;color:#555}
#catalogErrors .failing td{color:#a00}
</style></head><body>
<h1>sidecache <span id="status">connecting…</span></h1>
<div class="cards">
<div class="card">hit ratio<b id="hitRatio">–</b></div>
<div class="card">requests/s<b id="rate">–</b></div>
<div class="card">mean latency<b id="latency">–</b></div>
<div class="card">entries<b id="entries">–</b></div>
<div class="card">memory<b id="memory">–</b></div>
<div class="card">serving<b id="degraded">–</b></div>
</div>
<table><thead><tr><th>listener</th><th>protocol</th><th>hit</th><th>miss</th><th>stale</th><th>bypass</th><th>error</th><th>hit ratio</th></tr></thead><tbody id="listeners"></tbody></table>
<table><caption>PostgreSQL catalog errors: while the catalog cannot be asked, nothing is cached for that database and user (the log's SC_WARN_CATALOG_UNAVAILABLE names them, with the fix)</caption>
<thead><tr><th>listener</th><th>reason</th><th>count</th></tr></thead><tbody id="catalogErrors"></tbody></table>
<table><thead><tr><th>recent invalidation</th><th>source</th><th>removed</th></tr></thead><tbody id="invalidations"></tbody></table>
<script>
let last;
const $ = (id) => document.getElementById(id);
const pct = (r) => r === null || r === undefined ? '–' : (r * 100).toFixed(1) + '%';
const mib = (b) => (b / 1048576).toFixed(1) + ' MiB';
function row(cells) { const tr = document.createElement('tr'); for (const c of cells) { const td = document.createElement('td'); td.textContent = String(c); tr.appendChild(td); } return tr; }
async function tick() {
  try {
    const d = await (await fetch('live', { cache: 'no-store' })).json();
    const ls = Object.entries(d.listeners);
    let hits = 0, answered = 0, total = 0;
    for (const [, l] of ls) { hits += l.hit + l.stale; answered += l.hit + l.stale + l.miss; total += l.hit + l.miss + l.stale + l.bypass + l.error; }
    $('hitRatio').textContent = answered ? pct(hits / answered) : '–';
    $('entries').textContent = String(d.entries);
    $('memory').textContent = mib(d.bytes) + ' / ' + mib(d.maxBytes);
    $('degraded').textContent = d.degraded || 'normal';
    if (last) {
      const seconds = (d.time - last.time) / 1000;
      $('rate').textContent = seconds > 0 ? ((total - last.total) / seconds).toFixed(1) : '–';
      const n = d.durationCount - last.durationCount;
      $('latency').textContent = n > 0 ? (((d.durationSum - last.durationSum) / n) * 1000).toFixed(2) + ' ms' : '–';
    }
    last = { time: d.time, total, durationSum: d.durationSum, durationCount: d.durationCount };
    const counts = (name, protocol, l) => row([name, protocol, l.hit, l.miss, l.stale, l.bypass, l.error, pct(l.hitRatio)]);
    $('listeners').replaceChildren(...ls.flatMap(([name, l]) => [counts(name, l.protocol, l), ...Object.entries(l.routes || {}).map(([route, r]) => counts(name + ' › ' + route, 'route', r))]));
    const failures = ls.flatMap(([name, l]) => Object.entries(l.catalogErrors || {}).map(([reason, n]) => [name, reason, n]));
    $('catalogErrors').replaceChildren(...(failures.length ? failures.map((f) => { const tr = row(f); tr.className = 'failing'; return tr; }) : [row(['none', '', ''])]));
    $('invalidations').replaceChildren(...d.invalidations.map((i) => row([i.time, i.source, i.removed])));
    $('status').textContent = 'live';
  } catch (err) {
    $('status').textContent = 'unreachable';
  }
}
tick();
setInterval(tick, 1000);
</script></body></html>
`;
