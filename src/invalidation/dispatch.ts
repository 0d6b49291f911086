import type { Store } from '../cache/store.js';
import { tableTag } from '../cache/tags.js';
import type { InvalidationTarget } from '../cache/types.js';
import { channels, type InvalidationEvent } from '../events.js';
import type { Logger } from '../log.js';

/**
 * Names (tags, keys, prefixes) a message applies per turn of the event loop when it is large: a
 * message of a million tags is applied slice by slice, with hits served in between.
 */
export const SLICE_NAMES = 1_000;

/**
 * Hands `table:` tags a message named to whatever knows what they reach (server.ts: the postgres
 * listeners' catalogs), which calls `invalidate` with the tags they expand to when it knows them.
 */
export type ExpandTables = (tables: readonly string[], invalidate: (tags: string[]) => void) => void;

const TABLE = tableTag('');

/**
 * The one invalidation path: the admin endpoint and every bus hand their messages here. The
 * store bumps generations before it removes anything, and `apply` returns only once the local
 * store no longer holds what the message names.
 */
export class Dispatcher {
  readonly #store: Store;
  readonly #log: Logger;
  readonly #expandTables: ExpandTables | undefined;

  /** With `expandTables` (the buses' dispatcher), the tables a message names are invalidated at once, what they reach when that is known. */
  constructor(store: Store, log: Logger, expandTables?: ExpandTables) {
    this.#store = store;
    this.#log = log;
    this.#expandTables = expandTables;
  }

  apply(target: InvalidationTarget, source: string): number {
    const removed = this.#applied(target, source, this.#store.invalidate(target));
    this.#expand(target, source);
    return removed;
  }

  #expand(target: InvalidationTarget, source: string): void {
    if (this.#expandTables === undefined || target.all === true) return;
    const named = new Set(target.tags?.filter((t) => t.startsWith(TABLE)));
    if (named.size === 0) return;
    this.#expandTables([...named], (tags) => {
      const more = tags.filter((t) => !named.has(t));
      if (more.length > 0) this.#applied({ tags: more }, `${source} expansion`, this.#store.invalidate({ tags: more }));
    });
  }

  /**
   * Like `apply`, for a message that may be large: more than SLICE_NAMES names are applied in
   * slices, yielding to the event loop between them; the message is counted once, at the end.
   */
  async applyInSlices(target: InvalidationTarget, source: string): Promise<number> {
    if (target.all || namesOf(target) <= SLICE_NAMES) return this.apply(target, source);
    let removed = 0;
    for (const slice of slices(target)) {
      removed += this.#store.invalidate(slice);
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    this.#expand(target, source);
    return this.#applied(target, source, removed);
  }

  #applied(target: InvalidationTarget, source: string, removed: number): number {
    if (channels.invalidation.hasSubscribers) {
      channels.invalidation.publish({ store: this.#store, source, removed, target } satisfies InvalidationEvent);
    }
    this.#log.debug('invalidation applied', { source, removed });
    return removed;
  }
}

/** How many names a message carries. */
export function namesOf(target: InvalidationTarget): number {
  return (target.tags?.length ?? 0) + (target.keys?.length ?? 0) + (target.prefixes?.length ?? 0);
}

function* slices(target: InvalidationTarget): Generator<InvalidationTarget> {
  for (const field of ['tags', 'keys', 'prefixes'] as const) {
    const list = target[field] ?? [];
    for (let i = 0; i < list.length; i += SLICE_NAMES) yield { [field]: list.slice(i, i + SLICE_NAMES) };
  }
}
