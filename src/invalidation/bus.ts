import type { Millis } from '../units.js';

/**
 * One pub/sub transport that carries invalidation messages. It knows how to subscribe once and
 * to prove, on a schedule, that the subscription still hears the server; the runner (runner.ts)
 * reconnects it, reports its state and handles gaps, the same way for all.
 */
export interface Subscription {
  /**
   * Ends the subscription, politely if the server answers within `graceMs`, by closing the socket
   * otherwise; `onLost` is not called for a close asked for here.
   */
  close(graceMs: Millis): Promise<void>;
  /**
   * True when nothing published while no subscription listened was lost: a durable bus (a stream
   * read on from the last ID applied, a replication slot) that resumed where the previous
   * subscription of this transport stopped. The runner then skips the gap handling (onGap).
   */
  readonly resumed?: boolean;
}

export interface BusTransport {
  /** Label in metrics and logs, e.g. `redis:sidecache`. */
  readonly name: string;
  /**
   * Connects and subscribes. Resolves once messages published from now on will arrive; rejects
   * when that cannot be done (and then has closed what it opened, and never calls `onLost`).
   * `onLost` is called at most once, if the subscription later breaks or misses a heartbeat; the
   * transport has closed its connection by then. `onMessage` receives the payload as it came, so
   * that the runner can refuse an oversized one before decoding it.
   */
  subscribe(onMessage: (payload: Buffer | string) => void, onLost: (reason: string) => void): Promise<Subscription>;
  /**
   * Sends a message to every subscriber of the bus, this instance's own included (echoes are
   * harmless: applying a message twice is). Absent on a transport that cannot send.
   */
  publish?(payload: string): Promise<void>;
  /** The largest payload the bus carries, in bytes of UTF-8 (NOTIFY: less than 8000); larger messages are split. */
  readonly maxPayloadBytes?: number;
  /** Closes what `publish` opened (its connection of its own), within `graceMs`. */
  close?(graceMs: Millis): Promise<void>;
}

/** A transport that can send. */
export type PublishingTransport = BusTransport & Required<Pick<BusTransport, 'publish'>>;

export function canPublish(transport: BusTransport): transport is PublishingTransport {
  return transport.publish !== undefined;
}

/** Bounds a promise: rejects with `what` when it has not settled within `ms`, after `onTimeout` ran. */
export function within<T>(promise: Promise<T>, ms: Millis, what: string, onTimeout: () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      onTimeout();
      reject(new Error(`${what} took longer than ${ms} ms`));
    }, ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err as Error);
      },
    );
  });
}
