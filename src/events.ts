import diagnostics from 'node:diagnostics_channel';

/**
 * Channels that core modules publish on. Metrics and logging subscribe; `cache/` and protocol
 * code never import either. Every message carries the `store` it concerns, so several servers in
 * one process (as in tests) each read only their own.
 */
export const channels = {
  /** An entry left the store. Message: `RemovalEvent`. */
  remove: diagnostics.channel('sidecache:cache:remove'),
  /** An entry was refused for being larger than `maxEntryBytes`. Message: `RefusedEvent`. */
  refused: diagnostics.channel('sidecache:cache:refused'),
  /** A caller joined a fill already in flight. Message: `CoalescedEvent`. */
  coalesced: diagnostics.channel('sidecache:cache:coalesced'),
  /** An invalidation was applied. Message: `InvalidationEvent`. */
  invalidation: diagnostics.channel('sidecache:invalidation'),
  /** A listener answered a request. Message: `RequestEvent`. */
  request: diagnostics.channel('sidecache:request'),
} as const;

export type RequestResult = 'hit' | 'miss' | 'stale' | 'bypass' | 'error';
export type Protocol = 'http' | 'postgres';

/** Published by listeners once a request has been answered. */
export interface RequestEvent {
  store: object;
  protocol: Protocol;
  listener: string;
  /** The gateway route that answered (`http[].routes[]`), when the listener has routes. */
  route?: string;
  result: RequestResult;
  /** Time from request to the end of the answer. */
  durationSeconds: number;
  /** Time spent waiting on the upstream, when it was asked. */
  upstreamSeconds?: number;
  /** Why an answer did not come from the cache although it might have: `bus-down` while the store is degraded (`whileDown`). */
  detail?: string;
}

/** Published by invalidation dispatch. */
export interface InvalidationEvent {
  store: object;
  /** `admin`, or the bus name. */
  source: string;
  removed: number;
  /** What was invalidated (the store's `InvalidationTarget`), so caches of derived facts (the Postgres planner's) can drop theirs. */
  target: { readonly tags?: readonly string[]; readonly all?: boolean };
}
