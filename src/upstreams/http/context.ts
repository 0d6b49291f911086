/**
 * What the parts of one HTTP listener share (ListenerContext), and what one request carries through
 * them (FillRequest, Exchange).
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Store } from '../../cache/store.js';
import type { InvalidationTarget } from '../../cache/types.js';
import type { Clock } from '../../clock.js';
import type { Millis } from '../../units.js';
import type { HttpServiceConfig } from '../../config/schema.js';
import type { RequestResult } from '../../events.js';
import type { Logger } from '../../log.js';
import type { LocalInvalidation } from '../local-invalidation.js';
import type { ForwardReason } from './cache-status.js';
import type { Upstream } from './forward.js';
import type { ListenerDefaults, PolicyClass } from './policy.js';
import type { HttpRoute } from './rules.js';

/** What the parts of one HTTP listener share. Built once per listener. */
export interface ListenerContext {
  /** Namespace of store keys and URL tags: the listener's name, and a gateway route's identity with it (`routes.ts`). */
  readonly name: string;
  /** The listener's name (metrics label). */
  readonly listener: string;
  /** The gateway route's name (metrics label); undefined on a listener with one `upstream`. */
  readonly route: string | undefined;
  /** Replaced on reload, with `defaults` and `tagHeader` (settings that need no new socket). */
  config: HttpServiceConfig;
  readonly store: Store;
  readonly clock: Clock;
  readonly log: Logger;
  readonly upstream: Upstream;
  readonly Policy: PolicyClass;
  defaults: ListenerDefaults;
  /** Lower-case name of the tag header. */
  tagHeader: string;
  /** Applies an invalidation through the one dispatch path and publishes it to the other replicas. */
  invalidate(target: InvalidationTarget): LocalInvalidation;
  /** Publishes the request event (metrics subscribe to it); with `res`, also the access line when `log.access` is on. */
  report(result: RequestResult, started: Millis, upstreamMs?: Millis, res?: ServerResponse): void;
  /** An upstream response failed after its headers (a reset or timeout mid-body): counted and logged like a request that failed. */
  upstreamFailed(err: unknown): void;
  /** Remembers that `key` answers unshareable responses, so its requests stop waiting on each other. */
  markHitForMiss(key: string): void;
  /** Remembers the Vary names of a URL's stored responses (empty: no Vary). */
  learnVary(base: string, names: readonly string[]): void;
}

/** What a fill needs to know of a GET or HEAD: the request, never the client's response. */
export interface FillRequest {
  readonly req: IncomingMessage;
  readonly route: HttpRoute;
  /** Path and query as sent. */
  readonly url: string;
  /** Key of the URL, before variants. */
  readonly base: string;
  /** Key looked up (the variant key when the URL's Vary is known). */
  readonly key: string;
  /** Request fields as the cache policy sees them (without Cache-Control when the route ignores it). */
  readonly policyHeaders: IncomingHttpHeaders;
}

/** One GET or HEAD on its way through the cache. */
export interface Exchange extends FillRequest {
  readonly res: ServerResponse;
  readonly started: Millis;
  /** Why the request goes upstream, for Cache-Status. */
  fwd: ForwardReason;
  /** A Cache-Status detail for the answer when the fill gives none (`bus-down`: a stored entry was withheld). */
  detail?: string;
}
