/** The invalidation hook server.ts hands the listeners (so that `upstreams/` does not import `invalidation/`). */
import type { InvalidationTarget } from '../cache/types.js';

/** What a local invalidation gives back: the entries removed here, and its publication to the other replicas. */
export interface LocalInvalidation {
  removed: number;
  /** Settles (never rejects) once published on every bus, or kept for later, or after the publish wait. */
  published: Promise<void>;
}

/** Applies `target` here at once and publishes it; `source` names the listener in metrics. */
export type Invalidate = (target: InvalidationTarget, source: string) => LocalInvalidation;
