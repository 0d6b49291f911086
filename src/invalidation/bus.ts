/**
 * One pub/sub transport that carries invalidation messages. It knows how to subscribe once; the
 * runner (runner.ts) reconnects it, reports its state and handles gaps, the same way for all.
 */
export interface Subscription {
  /** Ends the subscription; `onLost` is not called for a close asked for here. */
  close(): Promise<void>;
}

export interface BusTransport {
  /** Label in metrics and logs, e.g. `redis:sidecache`. */
  readonly name: string;
  /**
   * Connects and subscribes. Resolves once messages published from now on will arrive; rejects
   * when that cannot be done. `onLost` is called once if the subscription later breaks.
   */
  subscribe(onMessage: (payload: string) => void, onLost: (reason: string) => void): Promise<Subscription>;
}
