/** The publish side of one bus: local invalidations out, an outbox while the bus cannot take them. */
import type { InvalidationTarget } from '../cache/types.js';
import type { Logger } from '../log.js';
import type { Bytes, Millis } from '../units.js';
import { type PublishingTransport, within } from './bus.js';
import { encodeForBus } from './encode.js';
import { Outbox } from './outbox.js';

export interface PublishHooks {
  /** One local invalidation sent on the bus, or not (then kept in the outbox). */
  published(bus: string, result: 'sent' | 'failed'): void;
  /** Names waiting in the bus's outbox now. */
  outbox(bus: string, names: number): void;
}

/** Names an outbox keeps before it becomes `{all: true}`. */
export const OUTBOX_MAX_NAMES = 10_000;
/** A publish that has not completed by then failed (its connection is closed by the transport's own timeout first). */
const PUBLISH_TIMEOUT_MS: Millis = 10_000;
/** While the outbox holds something, it is tried again this often (and at once when the bus resubscribes). */
const RETRY_MS: Millis = 1_000;
const WARN_EVERY_MS: Millis = 60_000;

/**
 * Sends a replica's own invalidations on one bus, stamped with its instance id. A publish that
 * fails is never lost silently: its target waits, coalesced, in the outbox, counted and warned
 * about, and is published when the bus takes messages again.
 */
export class Publisher {
  readonly #transport: PublishingTransport;
  readonly #origin: string;
  readonly #limit: Bytes;
  readonly #hooks: PublishHooks;
  readonly #log: Logger;
  readonly #outbox = new Outbox(OUTBOX_MAX_NAMES);
  #timer: NodeJS.Timeout | undefined;
  #retrying = false;
  #closed = false;

  constructor(transport: PublishingTransport, options: { origin: string; maxMessageBytes: Bytes; hooks: PublishHooks; log: Logger }) {
    this.#transport = transport;
    this.#origin = options.origin;
    // What receivers accept (their maxMessageBytes, assumed the same on every replica) and what the bus carries.
    this.#limit = Math.min(options.maxMessageBytes, transport.maxPayloadBytes ?? Infinity);
    this.#hooks = options.hooks;
    this.#log = options.log;
  }

  /** Names waiting in the outbox. */
  get pending(): number {
    return this.#outbox.size;
  }

  /** Publishes `target`; resolves once sent or kept in the outbox, never rejects. */
  async send(target: InvalidationTarget): Promise<void> {
    if (this.#closed) return;
    try {
      for (const message of encodeForBus(target, this.#origin, this.#limit)) {
        await within(this.#transport.publish(message), PUBLISH_TIMEOUT_MS, 'publishing', () => undefined);
      }
      this.#hooks.published(this.#transport.name, 'sent');
    } catch (err) {
      this.#keep(target, err);
    }
  }

  /** Publishes what the outbox holds (the bus is back, or the retry timer ran). */
  retry(): void {
    if (this.#retrying || this.#closed) return;
    const target = this.#outbox.take();
    if (target === undefined) return;
    this.#retrying = true;
    this.#hooks.outbox(this.#transport.name, this.#outbox.size);
    void this.send(target).finally(() => {
      this.#retrying = false;
      if (this.#outbox.size === 0) this.#log.info('bus outbox published', { bus: this.#transport.name });
    });
  }

  /** Empties the outbox into the caller's hands (a reload hands it to the bus that replaces this one). */
  takeOutbox(): InvalidationTarget | undefined {
    const target = this.#outbox.take();
    this.#hooks.outbox(this.#transport.name, 0);
    return target;
  }

  /** Keeps `target` for the next retry (a predecessor's outbox). */
  adopt(target: InvalidationTarget): void {
    this.#outbox.add(target);
    this.#hooks.outbox(this.#transport.name, this.#outbox.size);
    this.#schedule();
  }

  async close(graceMs: Millis): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#transport.close?.(graceMs);
  }

  #keep(target: InvalidationTarget, err: unknown): void {
    this.#outbox.add(target);
    this.#hooks.published(this.#transport.name, 'failed');
    this.#hooks.outbox(this.#transport.name, this.#outbox.size);
    const bus = this.#transport.name;
    this.#log.warnEvery('SC_WARN_BUS_PUBLISH', `${bus}: an invalidation could not be published; kept in the outbox until the bus is back`, bus, WARN_EVERY_MS, {
      bus,
      err: (err as Error).message,
      outbox: this.#outbox.size,
    });
    this.#schedule();
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.retry();
      if (this.#outbox.size > 0) this.#schedule();
    }, RETRY_MS);
    this.#timer.unref();
  }
}
