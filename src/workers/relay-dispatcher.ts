import type { InvalidationTarget } from '../cache/types.js';
import { Dispatcher } from '../invalidation/dispatch.js';

/**
 * The buses' dispatcher in the primary of `workers: N`: the primary holds no entries, so what a
 * bus says (a message, a gap's flush) goes to every worker, whose own dispatcher applies it (and
 * expands the tables it names with its listeners' catalogs). Over the IPC channel, in order.
 */
export class RelayDispatcher extends Dispatcher {
  readonly #relay: (target: InvalidationTarget, source: string) => void;

  constructor(base: ConstructorParameters<typeof Dispatcher>, relay: (target: InvalidationTarget, source: string) => void) {
    super(...base);
    this.#relay = relay;
  }

  override apply(target: InvalidationTarget, source: string): number {
    this.#relay(target, source);
    return 0;
  }

  override applyInSlices(target: InvalidationTarget, source: string): Promise<number> {
    return Promise.resolve(this.apply(target, source));
  }
}
