import diagnostics, { type Channel } from 'node:diagnostics_channel';
import type { Store } from '../cache/store.js';
import type { CoalescedEvent, RemovalEvent } from '../cache/types.js';
import { channels, type InvalidationEvent, type RequestEvent } from '../events.js';
import type { Metrics } from './registry.js';

/**
 * Feeds `metrics` from the events of one store and its listeners. Returns the unsubscribe
 * function. Replacements are not evictions, so they are not counted there.
 */
export function subscribeMetrics(store: Store, metrics: Metrics): () => void {
  // Label-bound children, found once per label set: a request event must not hash labels each time.
  const requestChildren = new Map<string, { count: { inc(): void }; duration: { observe(v: number): void }; upstream: { observe(v: number): void } }>();
  const childrenOf = (e: RequestEvent) => {
    const id = `${e.protocol}\u0000${e.listener}\u0000${e.result}\u0000${e.route ?? ''}`;
    let children = requestChildren.get(id);
    if (children === undefined) {
      // A listener without routes has no `route` label at all (its series are as they always were).
      const route = e.route === undefined ? {} : { route: e.route };
      const labels = { protocol: e.protocol, listener: e.listener, result: e.result, ...route };
      children = {
        count: metrics.requests.labels(labels),
        duration: metrics.requestDuration.labels(labels),
        upstream: metrics.upstreamDuration.labels({ protocol: e.protocol, listener: e.listener, ...route }),
      };
      requestChildren.set(id, children);
    }
    return children;
  };
  const handlers: [Channel, (message: unknown) => void][] = [
    [
      channels.remove,
      (m) => {
        const e = m as RemovalEvent;
        if (e.store === store && e.reason !== 'replaced') metrics.evictions.inc({ reason: e.reason });
      },
    ],
    [
      channels.refused,
      (m) => {
        if ((m as { store: object }).store === store) metrics.refused.inc();
      },
    ],
    [
      channels.coalesced,
      (m) => {
        const e = m as CoalescedEvent;
        if (e.store !== store) return;
        metrics.coalesced.inc({ protocol: e.context?.protocol ?? 'unknown', listener: e.context?.listener ?? 'unknown' });
      },
    ],
    [
      channels.invalidation,
      (m) => {
        const e = m as InvalidationEvent;
        if (e.store !== store) return;
        metrics.invalidations.inc({ source: e.source });
        metrics.invalidatedEntries.inc({ source: e.source }, e.removed);
      },
    ],
    [
      channels.request,
      (m) => {
        const e = m as RequestEvent;
        if (e.store !== store) return;
        const children = childrenOf(e);
        children.count.inc();
        children.duration.observe(e.durationSeconds);
        if (e.upstreamSeconds !== undefined) children.upstream.observe(e.upstreamSeconds);
      },
    ],
  ];
  for (const [channel, handler] of handlers) diagnostics.subscribe(channel.name, handler);
  return () => {
    for (const [channel, handler] of handlers) diagnostics.unsubscribe(channel.name, handler);
  };
}
