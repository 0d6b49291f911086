import type { Millis } from '../units.js';
import { isSidecacheError } from '../errors.js';
import type { Logger } from '../log.js';
import type { BusTransport, Subscription } from './bus.js';
import type { Dispatcher } from './dispatch.js';
import { parseInvalidation } from './message.js';

/** What a disconnected bus may have missed: `flush` drops every entry on reconnect, `keep` accepts the risk. */
export type GapPolicy = 'flush' | 'keep';

export interface BusHooks {
  state(bus: string, connected: boolean): void;
  gap(bus: string): void;
  badMessage(bus: string): void;
}

/** Reconnect delays: doubling from BASE to CAP, each with full jitter, so instances do not reconnect in step. */
const BASE_MS: Millis = 100;
const CAP_MS: Millis = 5_000;

/**
 * Keeps one bus subscribed: reconnects with capped exponential backoff and jitter, reports its
 * state, applies its messages through the one dispatch path, and treats every resubscription as
 * a gap (pub/sub and NOTIFY are at-most-once, so messages sent meanwhile are lost).
 */
export class BusRunner {
  readonly name: string;
  readonly #transport: BusTransport;
  readonly #gapPolicy: GapPolicy;
  readonly #dispatcher: Dispatcher;
  readonly #hooks: BusHooks;
  readonly #log: Logger;
  #subscription: Subscription | undefined;
  #stopped = false;
  #attempt = 0;
  #timer: NodeJS.Timeout | undefined;
  /** Set once entries may have been served without this bus: the next subscription flushes. */
  #missed = false;
  #reason = 'not connected yet';

  constructor(transport: BusTransport, options: { gap: GapPolicy; dispatcher: Dispatcher; hooks: BusHooks; log: Logger }) {
    this.name = transport.name;
    this.#transport = transport;
    this.#gapPolicy = options.gap;
    this.#dispatcher = options.dispatcher;
    this.#hooks = options.hooks;
    this.#log = options.log;
  }

  get connected(): boolean {
    return this.#subscription !== undefined;
  }

  /** Why the bus is not connected, for /readyz. */
  get reason(): string | undefined {
    return this.connected ? undefined : this.#reason;
  }

  /** The first attempt, awaited before listeners open; later ones run in the background. */
  async start(): Promise<void> {
    this.#hooks.state(this.name, false);
    await this.#connect();
    // From here on, listeners serve: a bus that was not up has missed whatever was published.
    if (!this.connected) this.#missed = true;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    const subscription = this.#subscription;
    this.#subscription = undefined;
    await subscription?.close();
    this.#hooks.state(this.name, false);
  }

  async #connect(): Promise<void> {
    if (this.#stopped) return;
    try {
      const subscription = await this.#transport.subscribe(
        (payload) => this.#onMessage(payload),
        (reason) => this.#onLost(reason),
      );
      if (this.#stopped) return void (await subscription.close());
      this.#subscription = subscription;
      this.#attempt = 0;
      this.#hooks.state(this.name, true);
      this.#log.info('bus subscribed', { bus: this.name });
      if (this.#missed) this.#onGap();
    } catch (err) {
      this.#reason = `cannot subscribe: ${(err as Error).message}`;
      this.#log.warn('bus subscribe failed', { bus: this.name, err: (err as Error).message, attempt: this.#attempt });
      this.#retry();
    }
  }

  #onLost(reason: string): void {
    if (this.#stopped) return;
    this.#subscription = undefined;
    this.#missed = true;
    this.#reason = `disconnected: ${reason}`;
    this.#hooks.state(this.name, false);
    this.#log.warn('bus disconnected', { bus: this.name, reason });
    this.#retry();
  }

  #retry(): void {
    if (this.#stopped) return;
    const delay = Math.random() * Math.min(CAP_MS, BASE_MS * 2 ** this.#attempt);
    this.#attempt++;
    this.#timer = setTimeout(() => void this.#connect(), delay);
    this.#timer.unref();
  }

  #onGap(): void {
    this.#missed = false;
    this.#hooks.gap(this.name);
    if (this.#gapPolicy === 'keep') {
      this.#log.warn('bus reconnected after a gap; entries kept (onGap: keep)', { bus: this.name });
      return;
    }
    const removed = this.#dispatcher.apply({ all: true }, `${this.name} gap`);
    this.#log.warn('bus reconnected after a gap; cache flushed', { bus: this.name, removed });
  }

  #onMessage(payload: string): void {
    let target;
    try {
      target = parseInvalidation(payload);
    } catch (err) {
      if (!isSidecacheError(err)) throw err;
      this.#hooks.badMessage(this.name);
      this.#log.warnOnce('SC_WARN_BAD_INVALIDATION', `${this.name}: ${err.message}`, `${this.name}\u0000${err.message}`);
      return;
    }
    this.#dispatcher.apply(target, this.name);
  }
}
