import type { Store } from '../cache/store.js';
import type { InvalidationTarget } from '../cache/types.js';
import { channels, type InvalidationEvent } from '../events.js';
import type { Logger } from '../log.js';

/**
 * The one invalidation path: the admin endpoint and every bus hand their messages here. The
 * store bumps generations before it removes anything, and `apply` returns only once the local
 * store no longer holds what the message names.
 */
export class Dispatcher {
  readonly #store: Store;
  readonly #log: Logger;

  constructor(store: Store, log: Logger) {
    this.#store = store;
    this.#log = log;
  }

  apply(target: InvalidationTarget, source: string): number {
    const removed = this.#store.invalidate(target);
    if (channels.invalidation.hasSubscribers) {
      channels.invalidation.publish({ store: this.#store, source, removed, target } satisfies InvalidationEvent);
    }
    this.#log.debug('invalidation applied', { source, removed });
    return removed;
  }
}
