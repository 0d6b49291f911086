import diagnostics, { type Channel } from 'node:diagnostics_channel';
import type { Store } from '../cache/store.js';
import type { CoalescedEvent, RemovalEvent } from '../cache/types.js';
import { channels, type InvalidationEvent, type RequestEvent } from '../events.js';
import { countLater, type CountChild, type HistogramChild } from './fast-metrics.js';
import type { Metrics } from './registry.js';

interface RequestChildren {
  count: CountChild;
  duration: HistogramChild;
  upstream: HistogramChild;
}

/**
 * Feeds `metrics` from the events of one store and its listeners. Returns the unsubscribe
 * function. Replacements are not evictions, so they are not counted there.
 */
export function subscribeMetrics(store: Store, metrics: Metrics): () => void {
  // Label-bound children, found once per label set (by nested maps of the event's own strings, so
  // nothing is built per event): counting and observing are then increments (`counter-tally.ts`,
  // `bucket-histogram.ts`).
  const requestChildren = new Map<string, Map<string, Map<string, Map<string, RequestChildren>>>>();
  const childrenOf = (e: RequestEvent): RequestChildren => {
    const route = e.route ?? '';
    let byListener = requestChildren.get(e.protocol);
    if (byListener === undefined) requestChildren.set(e.protocol, (byListener = new Map()));
    let byRoute = byListener.get(e.listener);
    if (byRoute === undefined) byListener.set(e.listener, (byRoute = new Map()));
    let byResult = byRoute.get(route);
    if (byResult === undefined) byRoute.set(route, (byResult = new Map()));
    let children = byResult.get(e.result);
    if (children === undefined) {
      // A listener without routes has no `route` label at all (its series are as they always were).
      const routeLabel: Record<string, string> = e.route === undefined ? {} : { route: e.route };
      const labels: Record<string, string> = { protocol: e.protocol, listener: e.listener, result: e.result, ...routeLabel };
      children = {
        count: countLater(metrics.requests, labels),
        duration: metrics.requestDuration.labels(labels),
        upstream: metrics.upstreamDuration.labels({ protocol: e.protocol, listener: e.listener, ...routeLabel }),
      };
      byResult.set(e.result, children);
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
