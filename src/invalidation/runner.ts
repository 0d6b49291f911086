import type { InvalidationTarget } from '../cache/types.js';
import type { Logger } from '../log.js';
import type { Bytes, Millis } from '../units.js';
import { type BusTransport, canPublish, type Subscription, within } from './bus.js';
import { type Dispatcher, namesOf, SLICE_NAMES } from './dispatch.js';
import { InvalidationMessageError, readInvalidation } from './message.js';
import { type PublishHooks, Publisher } from './publisher.js';

/** What a disconnected bus may have missed: `flush` drops every entry on reconnect, `keep` accepts the risk. */
export type GapPolicy = 'flush' | 'keep';

/**
 * How entries may be served while the bus is down (`whileDown`): not at all (`bypass`: 0), or
 * those stored less than `maxAgeMs` ago (`ttl:<duration>`).
 */
export interface WhileDown {
  readonly maxAgeMs: Millis;
}

export interface BusHooks extends PublishHooks {
  state(bus: string, connected: boolean): void;
  gap(bus: string): void;
  badMessage(bus: string): void;
  /** A message this instance published came back to it (recognised by its `origin`, and skipped). */
  echo(bus: string): void;
}

export interface BusRunnerOptions {
  gap: GapPolicy;
  whileDown: WhileDown;
  /** Publish this instance's own invalidations on the bus (`publish`). */
  publish: boolean;
  /** This instance's id, sent as `origin` and recognised in echoes. */
  origin: string;
  dispatcher: Dispatcher;
  hooks: BusHooks;
  log: Logger;
  maxMessageBytes: Bytes;
}

/** What `#read` answers for a message of this instance's own. */
const ECHO = Symbol('echo');

/** Reconnect delays: doubling from BASE to CAP, each with full jitter, so instances do not reconnect in step. */
const BASE_MS: Millis = 100;
const CAP_MS: Millis = 5_000;
/** A refused message is logged at most this often per bus and reason; the rest are counted. */
const BAD_MESSAGE_LOG_EVERY_MS: Millis = 60_000;

/**
 * Keeps one bus subscribed: reconnects with capped exponential backoff and jitter, reports its
 * state, applies its messages through the one dispatch path, and treats every resubscription as
 * a gap (pub/sub and NOTIFY are at-most-once, so messages sent meanwhile are lost).
 *
 * At most one connection per bus, always: one attempt runs at a time, a retry is scheduled only
 * when none is pending, and a loss is heard only from the subscription in use (an attempt that
 * fails is a rejection, never also a loss), so outages cannot multiply retry chains.
 */
export class BusRunner {
  readonly name: string;
  readonly #transport: BusTransport;
  readonly #gapPolicy: GapPolicy;
  readonly #dispatcher: Dispatcher;
  readonly #hooks: BusHooks;
  readonly #log: Logger;
  readonly #maxMessageBytes: Bytes;
  readonly #origin: string;
  readonly #publisher: Publisher | undefined;
  readonly whileDown: WhileDown;
  #subscription: Subscription | undefined;
  /** The attempt in flight, if any: there is never more than one. */
  #attempting: Promise<void> | undefined;
  #stopped = false;
  #attempt = 0;
  #timer: NodeJS.Timeout | undefined;
  /** Set once entries may have been served without this bus: the next subscription flushes. */
  #missed = false;
  #reason = 'not connected yet';
  #standIn: BusRunner | undefined;
  /** Large messages waiting to be applied in slices, in the order they came; small ones after them wait too. */
  readonly #backlog: InvalidationTarget[] = [];
  #draining = false;

  constructor(transport: BusTransport, options: BusRunnerOptions) {
    this.name = transport.name;
    this.whileDown = options.whileDown;
    this.#origin = options.origin;
    this.#publisher =
      options.publish && canPublish(transport)
        ? new Publisher(transport, { origin: options.origin, maxMessageBytes: options.maxMessageBytes, hooks: options.hooks, log: options.log })
        : undefined;
    this.#transport = transport;
    this.#gapPolicy = options.gap;
    this.#dispatcher = options.dispatcher;
    this.#hooks = options.hooks;
    this.#log = options.log;
    this.#maxMessageBytes = options.maxMessageBytes;
  }

  get connected(): boolean {
    return this.#subscription !== undefined;
  }

  /** Why the bus is not connected, for /readyz (not while a reload's predecessor still listens in its place). */
  get reason(): string | undefined {
    return this.connected || (this.#standIn?.connected ?? false) ? undefined : this.#reason;
  }

  /**
   * Publishes a local invalidation on the bus (resolves once sent or kept in the outbox, never
   * rejects); undefined when this bus does not publish. Messages received from a bus never come here.
   */
  publish(target: InvalidationTarget): Promise<void> | undefined {
    return this.#publisher?.send(target);
  }

  /**
   * Hands what waits in this bus's outbox to `successor` (a reload's replacement of the same name),
   * which publishes it; without a publishing successor it is dropped, logged.
   */
  handOutbox(successor: BusRunner | undefined): void {
    const target = this.#publisher?.takeOutbox();
    if (target === undefined) return;
    const next = successor === undefined ? undefined : successor.#publisher;
    if (next !== undefined) return next.adopt(target);
    this.#log.warn('a bus left the configuration with invalidations it could not publish', { bus: this.name });
  }

  /** Names waiting in the outbox (0 when the bus does not publish). */
  get outbox(): number {
    return this.#publisher?.pending ?? 0;
  }

  /** Whether messages may have been missed that no flush has covered yet (down now, or a flush pending). */
  get missed(): boolean {
    return this.#missed || !this.connected;
  }

  /**
   * The first attempt, awaited before listeners open; later ones run in the background. `standIn`
   * is a predecessor of the same name (a reload): while it is up, this bus does not report itself down.
   */
  async start(standIn?: BusRunner): Promise<void> {
    this.#standIn = standIn;
    if (!(standIn?.connected ?? false)) this.#hooks.state(this.name, false);
    await this.#connect();
    // From here on, listeners serve: a bus that was not up has missed whatever was published.
    if (!this.connected) this.#missed = true;
  }

  /** Ends the stand-in period of a reload: from now on this bus alone says whether it is up. */
  takeOver(): void {
    this.#standIn = undefined;
    this.#hooks.state(this.name, this.connected);
  }

  /**
   * Counts a window in which no subscription listened (a reload's predecessor that was down): the
   * cache is handled as after a gap, now if subscribed, else on the next subscription.
   */
  noteGap(): void {
    this.#missed = true;
    if (this.connected) this.#onGap();
  }

  /** Ends the subscription within `graceMs` (shutdownGrace): politely if the server answers, by closing the socket otherwise. */
  async stop(graceMs: Millis): Promise<void> {
    this.#stopped = true;
    if (this.outbox > 0) this.#log.warn('stopping with invalidations the bus could not publish', { bus: this.name, outbox: this.outbox });
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const deadline = Date.now() + graceMs;
    // An attempt in flight closes what it opens once it sees the stop; wait for it within the grace.
    if (this.#attempting !== undefined) await within(this.#attempting, graceMs, 'subscribing', () => undefined).catch(() => undefined);
    const subscription = this.#subscription;
    this.#subscription = undefined;
    await Promise.all([subscription?.close(Math.max(0, deadline - Date.now())), this.#publisher?.close(Math.max(0, deadline - Date.now()))]);
    this.#hooks.state(this.name, false);
  }

  #connect(): Promise<void> {
    if (this.#stopped || this.#attempting !== undefined || this.#subscription !== undefined) return Promise.resolve();
    this.#timer = undefined;
    this.#attempting = this.#tryOnce().finally(() => (this.#attempting = undefined));
    return this.#attempting;
  }

  async #tryOnce(): Promise<void> {
    // A loss reported before this attempt's subscription is adopted ends it as a failed attempt.
    let adopted: Subscription | undefined;
    let lostEarly: string | undefined;
    try {
      const subscription = await this.#transport.subscribe(
        (payload) => this.#onMessage(payload),
        (reason) => {
          if (adopted === undefined) lostEarly = reason;
          else if (this.#subscription === adopted) this.#onLost(reason);
        },
      );
      if (this.#stopped || lostEarly !== undefined) {
        await subscription.close(0);
        if (!this.#stopped) throw new Error(lostEarly);
        return;
      }
      adopted = subscription;
      this.#subscription = subscription;
      this.#attempt = 0;
      this.#hooks.state(this.name, true);
      this.#log.info('bus subscribed', { bus: this.name });
      if (this.#missed && subscription.resumed === true) this.#missed = false;
      else if (this.#missed) this.#onGap();
      // What could not be published while the bus was down goes out now.
      this.#publisher?.retry();
    } catch (err) {
      this.#reason = `cannot subscribe: ${(err as Error).message}`;
      this.#log.warn('bus subscribe failed', { bus: this.name, err: (err as Error).message, attempt: this.#attempt });
      this.#missed = true;
      this.#retry(true);
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

  /** Schedules the next attempt, unless one is already scheduled or running (but for the failing one itself). */
  #retry(fromAttempt = false): void {
    if (this.#stopped || this.#timer !== undefined || (this.#attempting !== undefined && !fromAttempt)) return;
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

  /** Runs inside the client library's data handler: nothing may throw out of here, whatever the payload. */
  #onMessage(payload: Buffer | string): void {
    let target: InvalidationTarget | typeof ECHO | undefined;
    try {
      target = this.#read(payload);
    } catch (err) {
      this.#refuse('unreadable', `${this.name}: invalid invalidation message: it cannot be read (${String((err as Error).message).slice(0, 120)})`);
      return;
    }
    if (target === undefined) return;
    if (target === ECHO) return this.#hooks.echo(this.name);
    try {
      this.#enqueue(target);
    } catch (err) {
      this.#failed(err);
    }
  }

  /** A message that could not be applied may have left entries it names: the safe answer is a flush. */
  #failed(err: unknown): void {
    this.#backlog.length = 0;
    this.#log.error('an invalidation message could not be applied; cache flushed', { bus: this.name, err });
    try {
      this.#dispatcher.apply({ all: true }, `${this.name} error`);
    } catch (flushErr) {
      this.#log.error('the cache could not be flushed', { bus: this.name, err: flushErr });
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
      this.#refuse('too large', `${this.name}: invalid invalidation message: ${size} bytes, more than maxMessageBytes (${this.#maxMessageBytes})`);
      return undefined;
    }
    try {
      const { target, origin } = readInvalidation(typeof payload === 'string' ? payload : payload.toString('utf8'));
      return origin === this.#origin ? ECHO : target;
    } catch (err) {
      if (!(err instanceof InvalidationMessageError)) throw err;
      this.#refuse(err.reason, `${this.name}: ${err.message}`);
      return undefined;
    }
  }

  #refuse(reason: string, msg: string): void {
    this.#hooks.badMessage(this.name);
    this.#log.warnEvery('SC_WARN_BAD_INVALIDATION', msg, `${this.name}\u0000${reason}`, BAD_MESSAGE_LOG_EVERY_MS, { bus: this.name, reason });
  }

  /** Small messages apply at once; a large one, and whatever comes while one is applied, wait in order. */
  #enqueue(target: InvalidationTarget): void {
    if (!this.#draining && (target.all === true || namesOf(target) <= SLICE_NAMES)) {
      this.#dispatcher.apply(target, this.name);
      return;
    }
    this.#backlog.push(target);
    if (!this.#draining) void this.#drain();
  }

  async #drain(): Promise<void> {
    this.#draining = true;
    try {
      for (let target = this.#backlog.shift(); target !== undefined; target = this.#backlog.shift()) {
        await this.#dispatcher.applyInSlices(target, this.name);
      }
    } catch (err) {
      this.#failed(err);
    } finally {
      this.#draining = false;
    }
  }
}
