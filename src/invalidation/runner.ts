import type { InvalidationTarget } from '../cache/types.js';
import type { Logger } from '../log.js';
import type { Bytes, Millis } from '../units.js';
import { type BusTransport, canPublish, type Subscription, within } from './bus.js';
import type { Dispatcher } from './dispatch.js';
import { Inbox, type InboxHooks } from './inbox.js';
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

export interface BusHooks extends PublishHooks, InboxHooks {
  state(bus: string, connected: boolean): void;
  gap(bus: string): void;
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

/** Reconnect delays: doubling from BASE to CAP, each with full jitter, so instances do not reconnect in step. */
const BASE_MS: Millis = 100;
const CAP_MS: Millis = 5_000;

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
  readonly #inbox: Inbox;
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

  constructor(transport: BusTransport, options: BusRunnerOptions) {
    this.name = transport.name;
    this.whileDown = options.whileDown;
    this.#publisher =
      options.publish && canPublish(transport)
        ? new Publisher(transport, { origin: options.origin, maxMessageBytes: options.maxMessageBytes, hooks: options.hooks, log: options.log })
        : undefined;
    this.#transport = transport;
    this.#gapPolicy = options.gap;
    this.#dispatcher = options.dispatcher;
    this.#hooks = options.hooks;
    this.#log = options.log;
    this.#inbox = new Inbox({
      bus: this.name,
      origin: options.origin,
      maxMessageBytes: options.maxMessageBytes,
      dispatcher: options.dispatcher,
      hooks: options.hooks,
      log: options.log,
    });
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
        (payload) => this.#inbox.receive(payload),
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
      // A durable bus that lost nothing resumes without a flush, unless replicas publish their own
      // invalidations on it: another replica's outbox may then hold what the stream never saw
      // (an outage they shared, this one back first), so the resume is a gap like any other.
      if (this.#missed && subscription.resumed === true && this.#publisher === undefined) this.#missed = false;
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
}
