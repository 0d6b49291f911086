import type { InvalidationTarget } from '../cache/types.js';
import type { Logger } from '../log.js';
import type { Bytes, Millis } from '../units.js';
import { type Dispatcher, namesOf, SLICE_NAMES } from './dispatch.js';
import { InvalidationMessageError, readInvalidation } from './message.js';

/** What an inbox reports: a refused message, and one of this instance's own coming back. */
export interface InboxHooks {
  badMessage(bus: string): void;
  /** A message this instance published came back to it (recognised by its `origin`, and skipped). */
  echo(bus: string): void;
}

export interface InboxOptions {
  /** The bus's name: the dispatch source, the label and the log field. */
  bus: string;
  /** This instance's id, recognised in echoes. */
  origin: string;
  maxMessageBytes: Bytes;
  dispatcher: Dispatcher;
  hooks: InboxHooks;
  log: Logger;
}

/** What `#read` answers for a message of this instance's own. */
const ECHO = Symbol('echo');

/** A refused message is logged at most this often per bus and reason; the rest are counted. */
const BAD_MESSAGE_LOG_EVERY_MS: Millis = 60_000;

/**
 * The receiving side of one bus: reads each payload (size first, then the contract), skips echoes,
 * and applies the rest through the one dispatch path, large messages in slices and in order.
 */
export class Inbox {
  readonly #name: string;
  readonly #origin: string;
  readonly #maxMessageBytes: Bytes;
  readonly #dispatcher: Dispatcher;
  readonly #hooks: InboxHooks;
  readonly #log: Logger;
  /** Large messages waiting to be applied in slices, in the order they came; small ones after them wait too. */
  readonly #backlog: InvalidationTarget[] = [];
  #draining = false;

  constructor(options: InboxOptions) {
    this.#name = options.bus;
    this.#origin = options.origin;
    this.#maxMessageBytes = options.maxMessageBytes;
    this.#dispatcher = options.dispatcher;
    this.#hooks = options.hooks;
    this.#log = options.log;
  }

  /** Runs inside the client library's data handler: nothing may throw out of here, whatever the payload. */
  receive(payload: Buffer | string): void {
    let target: InvalidationTarget | typeof ECHO | undefined;
    try {
      target = this.#read(payload);
    } catch (err) {
      this.#refuse('unreadable', `${this.#name}: invalid invalidation message: it cannot be read (${String((err as Error).message).slice(0, 120)})`);
      return;
    }
    if (target === undefined) return;
    if (target === ECHO) return this.#hooks.echo(this.#name);
    try {
      this.#enqueue(target);
    } catch (err) {
      this.#failed(err);
    }
  }

  /** A message that could not be applied may have left entries it names: the safe answer is a flush. */
  #failed(err: unknown): void {
    this.#backlog.length = 0;
    this.#log.error('an invalidation message could not be applied; cache flushed', { bus: this.#name, err });
    try {
      this.#dispatcher.apply({ all: true }, `${this.#name} error`);
    } catch (flushErr) {
      this.#log.error('the cache could not be flushed', { bus: this.#name, err: flushErr });
    }
  }

  /**
   * The message's target, ECHO for one this instance published (applied already, when it was
   * decided), or undefined when it was refused (counted and logged by reason).
   */
  #read(payload: Buffer | string): InvalidationTarget | typeof ECHO | undefined {
    // Checked before decoding: a string's UTF-8 size is at least its length.
    const size = typeof payload === 'string' ? (payload.length > this.#maxMessageBytes ? payload.length : Buffer.byteLength(payload)) : payload.length;
    if (size > this.#maxMessageBytes) {
      this.#refuse('too large', `${this.#name}: invalid invalidation message: ${size} bytes, more than maxMessageBytes (${this.#maxMessageBytes})`);
      return undefined;
    }
    try {
      const { target, origin } = readInvalidation(typeof payload === 'string' ? payload : payload.toString('utf8'));
      return origin === this.#origin ? ECHO : target;
    } catch (err) {
      if (!(err instanceof InvalidationMessageError)) throw err;
      this.#refuse(err.reason, `${this.#name}: ${err.message}`);
      return undefined;
    }
  }

  #refuse(reason: string, msg: string): void {
    this.#hooks.badMessage(this.#name);
    this.#log.warnEvery('SC_WARN_BAD_INVALIDATION', msg, `${this.#name}\u0000${reason}`, BAD_MESSAGE_LOG_EVERY_MS, { bus: this.#name, reason });
  }

  /** Small messages apply at once; a large one, and whatever comes while one is applied, wait in order. */
  #enqueue(target: InvalidationTarget): void {
    if (!this.#draining && (target.all === true || namesOf(target) <= SLICE_NAMES)) {
      this.#dispatcher.apply(target, this.#name);
      return;
    }
    this.#backlog.push(target);
    if (!this.#draining) void this.#drain();
  }

  async #drain(): Promise<void> {
    this.#draining = true;
    try {
      for (let target = this.#backlog.shift(); target !== undefined; target = this.#backlog.shift()) {
        await this.#dispatcher.applyInSlices(target, this.#name);
      }
    } catch (err) {
      this.#failed(err);
    } finally {
      this.#draining = false;
    }
  }
}
