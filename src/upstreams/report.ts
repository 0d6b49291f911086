import type { Store } from '../cache/store.js';
import type { Clock } from '../clock.js';
import type { Millis } from '../units.js';
import { channels, type Protocol, type RequestEvent, type RequestResult } from '../events.js';

export type Reporter = (result: RequestResult, started: Millis, upstreamMs?: Millis) => void;

/** Publishes a listener's answered requests; metrics subscribe. Costs nothing without subscribers. */
export function requestReporter(store: Store, protocol: Protocol, listener: string, clock: Clock, route?: string): Reporter {
  return (result, started, upstreamMs) => {
    if (!channels.request.hasSubscribers) return;
    const event: RequestEvent = {
      store,
      protocol,
      listener,
      ...(route !== undefined && { route }),
      result,
      durationSeconds: (clock.now() - started) / 1000,
      ...(upstreamMs !== undefined && { upstreamSeconds: upstreamMs / 1000 }),
      ...(store.degradation !== undefined && result !== 'hit' && { detail: store.degradation.reason }),
    };
    channels.request.publish(event);
  };
}
