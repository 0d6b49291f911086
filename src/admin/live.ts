import diagnostics from 'node:diagnostics_channel';
import type { Store } from '../cache/store.js';
import type { Registry } from 'prom-client';
import { channels, type InvalidationEvent } from '../events.js';
import { servingMode } from '../invalidation/while-down.js';
import { METRICS } from '../metrics/definitions.js';
import { hitRatio } from '../metrics/hit-ratio.js';
import type { CacheSummary } from './cache-summary.js';
import { type EntryQuery, shownTag } from './entries.js';

const KEEP = 20;
/** Names shown per recent invalidation; the rest are counted. */
const NAMES_SHOWN = 10;
/** The window of the live hit ratio. */
const WINDOW_MS = 60_000;
/** Entries in each of the live page's top lists. */
const TOP = 5;
const TOP_EVERY_MS = 10_000;
/** How often the counters are sampled for the last minute's ratio. */
const SAMPLE_EVERY_MS = 5_000;

interface Recent {
  time: string;
  source: string;
  removed: number;
  /** What the message named: tags (derived ones as `shownTag` shows them), prefixes, how many keys, or everything. */
  named: { tags?: string[]; prefixes?: string[]; keys?: number; all?: true; more?: number };
}

/** What an invalidation named, readable and short (queries of URL tags hidden). */
function namedBy(target: InvalidationEvent['target'] & { keys?: readonly string[]; prefixes?: readonly string[] }): Recent['named'] {
  if (target.all === true) return { all: true };
  const tags = (target.tags ?? []).flatMap((t) => shownTag(t, false));
  const prefixes = [...(target.prefixes ?? [])];
  const named: Recent['named'] = {};
  if (tags.length > 0) named.tags = tags.slice(0, NAMES_SHOWN);
  if (prefixes.length > 0) named.prefixes = prefixes.slice(0, NAMES_SHOWN);
  if ((target.keys?.length ?? 0) > 0) named.keys = target.keys!.length;
  const more = Math.max(0, tags.length - NAMES_SHOWN) + Math.max(0, prefixes.length - NAMES_SHOWN);
  if (more > 0) named.more = more;
  return named;
}

/** The last invalidations applied to one store, for the live page. */
export class RecentInvalidations {
  /**
   * As applied: formatted only when the page is read, since invalidations come with every write
   * (a date string and the names shown cost a write more than the rest of its invalidation).
   */
  readonly #items: { at: number; source: string; removed: number; target: InvalidationEvent['target'] }[] = [];
  readonly #unsubscribe: () => void;

  constructor(store: Store) {
    const handler = (message: unknown): void => {
      const e = message as InvalidationEvent;
      if (e.store === store) this.note(e.source, e.removed, e.target);
    };
    diagnostics.subscribe(channels.invalidation.name, handler);
    this.#unsubscribe = () => diagnostics.unsubscribe(channels.invalidation.name, handler);
  }

  /** An invalidation applied elsewhere (with `workers`, by the workers: `removed` is their sum). */
  note(source: string, removed: number, target: InvalidationEvent['target']): void {
    this.#items.unshift({ at: Date.now(), source, removed, target });
    this.#items.length = Math.min(this.#items.length, KEEP);
  }

  list(): readonly Recent[] {
    return this.#items.map(({ at, source, removed, target }) => ({ time: new Date(at).toISOString(), source, removed, named: namedBy(target) }));
  }

  close(): void {
    this.#unsubscribe();
  }
}

type Counts = Record<string, Record<string, number>>;

/**
 * The hit ratio of the last minute per listener: each `/live` read keeps the request counters (at
 * most one sample a second, none older than the window), and the ratio is that of the difference
 * between now and the oldest sample (the whole window once the page has been open a minute).
 */
export class RatioWindow {
  readonly #samples: { at: number; counts: Counts }[] = [];
  /** The top lists, read from the store at most every `TOP_EVERY_MS` (each is a scan of the store). */
  top: { at: number; byHits: unknown[]; byBytes: unknown[] } | undefined;

  /** Per listener, and `overall` for all of them together. */
  ratios(now: number, counts: Counts): { windowSeconds: number; overall: number | null; listeners: Record<string, number | null> } {
    while (this.#samples.length > 0 && now - this.#samples[0]!.at > WINDOW_MS) this.#samples.shift();
    const oldest = this.#samples[0];
    const last = this.#samples[this.#samples.length - 1];
    if (last === undefined || now - last.at >= 1000) this.#samples.push({ at: now, counts });
    const listeners: Record<string, number | null> = {};
    const total: Record<string, number> = {};
    for (const [listener, current] of Object.entries(counts)) {
      const before = oldest?.counts[listener] ?? {};
      const delta: Record<string, number> = {};
      for (const [result, n] of Object.entries(current)) {
        delta[result] = n - (before[result] ?? 0);
        total[result] = (total[result] ?? 0) + delta[result];
      }
      listeners[listener] = oldest === undefined ? null : hitRatio(delta);
    }
    return {
      windowSeconds: oldest === undefined ? 0 : Math.round((now - oldest.at) / 1000),
      overall: oldest === undefined ? null : hitRatio(total),
      listeners,
    };
  }
}

/**
 * What the live page reads: the `/cache` document, the entries, the registry and the store's
 * degradation (with `workers`, the workers' merged by the primary, whose store holds the degradation).
 */
export interface LiveSources {
  store: Store;
  summary(): Promise<CacheSummary>;
  entries(query: EntryQuery): Promise<{ entries: unknown[] }>;
  registry: Pick<Registry, 'getMetricsAsJSON'>;
  recent: RecentInvalidations;
  window: RatioWindow;
  buses(): { name: string; connected: boolean; reason: string | null }[];
}

/** Request counts by listener and result, as `RatioWindow` keeps them. */
function countsOf(summary: CacheSummary): Counts {
  return Object.fromEntries(Object.entries(summary.listeners).map(([name, l]) => [name, { hit: l.hit, miss: l.miss, stale: l.stale }]));
}

/**
 * Samples the counters every `SAMPLE_EVERY_MS` (and at once), so the last minute's ratio is known
 * even when nobody had the page open; returns the function that stops it.
 */
export function sampleRatios(window: RatioWindow, summary: () => Promise<CacheSummary>): () => void {
  const sample = (): void => {
    summary().then(
      (summary) => void window.ratios(Date.now(), countsOf(summary)),
      // Reading the registry does not fail (a worker that does not answer is left out); if it did, the next sample tries again.
      () => undefined,
    );
  };
  sample();
  const timer = setInterval(sample, SAMPLE_EVERY_MS);
  timer.unref();
  return () => clearInterval(timer);
}

/** `GET /live`: what the live page polls every second; rates are derived from the counters it returns. */
export async function liveDocument(live: LiveSources): Promise<unknown> {
  const summary = await live.summary();
  const metrics = await live.registry.getMetricsAsJSON();
  const valuesOf = (name: string) => metrics.find((m) => m.name === name)?.values ?? [];
  let durationSum = 0;
  let durationCount = 0;
  for (const { metricName, value } of valuesOf(METRICS.requestDuration.name) as { metricName?: string; value: number }[]) {
    if (metricName?.endsWith('_sum')) durationSum += value;
    if (metricName?.endsWith('_count')) durationCount += value;
  }
  const counts = countsOf(summary);
  const time = Date.now();
  const lastMinute = live.window.ratios(time, counts);
  const upstreamErrors = valuesOf(METRICS.upstreamErrors.name)
    .filter((v) => v.value > 0)
    .map((v) => ({ ...v.labels, count: v.value }));
  const top = async (sort: 'hits' | 'bytes') => (await live.entries({ sort, limit: TOP, reveal: false })).entries;
  if (live.window.top === undefined || time - live.window.top.at >= TOP_EVERY_MS)
    live.window.top = { at: time, byHits: await top('hits'), byBytes: await top('bytes') };
  return {
    time,
    ...summary,
    lastMinute,
    durationSum,
    durationCount,
    invalidations: live.recent.list(),
    buses: live.buses(),
    // `degraded`: how the cache serves while a bus is down (`whileDown`), null when it is not.
    degraded: servingMode(live.store.degradation) ?? null,
    upstreamErrors,
    topByHits: live.window.top.byHits,
    topByBytes: live.window.top.byBytes,
  };
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
<div class="card">hit ratio, last minute<b id="hitRatio">–</b></div>
<div class="card">requests/s<b id="rate">–</b></div>
<div class="card">mean latency<b id="latency">–</b></div>
<div class="card">entries<b id="entries">–</b></div>
<div class="card">memory<b id="memory">–</b></div>
<div class="card">serving<b id="degraded">–</b></div>
</div>
<table><caption>hit ratio = (hit + stale) / (hit + stale + miss)</caption><thead><tr><th>listener</th><th>protocol</th><th>hit</th><th>miss</th><th>stale</th><th>bypass</th><th>error</th><th>hit ratio, last minute</th><th>since start</th></tr></thead><tbody id="listeners"></tbody></table>
<table><caption>invalidation buses</caption><thead><tr><th>bus</th><th>state</th></tr></thead><tbody id="buses"></tbody></table>
<table><caption>upstream errors since start</caption><thead><tr><th>protocol</th><th>listener</th><th>reason</th><th>count</th></tr></thead><tbody id="upstreamErrors"></tbody></table>
<table><caption>PostgreSQL catalog errors: while the catalog cannot be asked, nothing is cached for that database and user (the log's SC_WARN_CATALOG_UNAVAILABLE names them, with the fix)</caption>
<thead><tr><th>listener</th><th>reason</th><th>count</th></tr></thead><tbody id="catalogErrors"></tbody></table>
<table><thead><tr><th>recent invalidation</th><th>source</th><th>named</th><th>removed</th></tr></thead><tbody id="invalidations"></tbody></table>
<table><caption>top entries by hits (query strings and literals hidden)</caption><thead><tr><th>key</th><th>listener</th><th>hits</th><th>bytes</th><th>ttl s</th></tr></thead><tbody id="topByHits"></tbody></table>
<table><caption>top entries by bytes</caption><thead><tr><th>key</th><th>listener</th><th>hits</th><th>bytes</th><th>ttl s</th></tr></thead><tbody id="topByBytes"></tbody></table>
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
    let total = 0;
    for (const [, l] of ls) total += l.hit + l.miss + l.stale + l.bypass + l.error;
    $('hitRatio').textContent = pct(d.lastMinute.overall);
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
    const counts = (name, protocol, l, minute) => row([name, protocol, l.hit, l.miss, l.stale, l.bypass, l.error, minute, pct(l.hitRatio)]);
    $('listeners').replaceChildren(
      ...ls.flatMap(([name, l]) => [
        counts(name, l.protocol, l, pct(d.lastMinute.listeners[name])),
        ...Object.entries(l.routes || {}).map(([route, r]) => counts(name + ' › ' + route, 'route', r, '')),
      ]),
    );
    $('buses').replaceChildren(...(d.buses.length ? d.buses.map((b) => row([b.name, b.connected ? 'subscribed' : 'down: ' + b.reason])) : [row(['none', ''])]));
    $('upstreamErrors').replaceChildren(...(d.upstreamErrors.length ? d.upstreamErrors.map((e) => row([e.protocol, e.listener, e.reason, e.count])) : [row(['none', '', '', ''])]));
    const keyText = (k) => k.url !== undefined ? k.url + (k.queryHidden ? '?…' : '') : k.sql;
    const top = (list) => list.map((e) => row([keyText(e.key), e.key.listener, e.hits, e.bytes, e.ttlSeconds]));
    $('topByHits').replaceChildren(...top(d.topByHits));
    $('topByBytes').replaceChildren(...top(d.topByBytes));
    const failures = ls.flatMap(([name, l]) => Object.entries(l.catalogErrors || {}).map(([reason, n]) => [name, reason, n]));
    $('catalogErrors').replaceChildren(...(failures.length ? failures.map((f) => { const tr = row(f); tr.className = 'failing'; return tr; }) : [row(['none', '', ''])]));
    const named = (n) => n.all ? 'everything' : [...(n.tags || []), ...(n.prefixes || []).map((p) => p + '*'), n.keys ? n.keys + ' keys' : '', n.more ? '+' + n.more + ' more' : ''].filter(Boolean).join(', ');
    $('invalidations').replaceChildren(...d.invalidations.map((i) => row([i.time, i.source, named(i.named), i.removed])));
    $('status').textContent = 'live';
  } catch (err) {
    $('status').textContent = 'unreachable';
  }
}
tick();
setInterval(tick, 1000);
</script></body></html>
`;
