/** One forked worker process as the primary sees it: its channel, its pending calls, its state. */
import cluster, { type Worker } from 'node:cluster';
import type { Config } from '../config/schema.js';
import { within } from '../invalidation/bus.js';
import { Calls } from './calls.js';
import type { Question, ToWorker } from './messages.js';

/** How long the admin waits for a worker's answer (prom-client's cluster aggregation waits as long). */
const ASK_TIMEOUT_MS = 5_000;

export class Member {
  /** The worker number (1 to N) it serves as, or will once it replaces the one serving. */
  readonly index: number;
  readonly worker: Worker;
  /** What it builds from when it is not the primary's running configuration (a reload's new workers). */
  readonly config: Config | undefined;
  readonly calls = new Calls();
  readonly startedAt = performance.now();
  /** Sent `init`: from then on it gets every relay (before, it has no store to relay to). */
  inited = false;
  /** Its listeners are bound. */
  ready = false;
  exited = false;

  constructor(index: number, config: Config | undefined) {
    this.index = index;
    this.config = config;
    this.worker = cluster.fork();
  }

  get pid(): number | undefined {
    return this.worker.process.pid;
  }

  /** Sends, unless the channel is gone (the worker is going, and its store with it); `strict` throws then. */
  send(message: ToWorker, strict = false): void {
    if (this.exited || !this.worker.isConnected()) {
      if (strict) throw new Error(`worker ${this.index} is not connected`);
      return;
    }
    this.worker.send(message);
  }

  /** A question for its admin part; a worker that has not answered within ASK_TIMEOUT_MS (stuck) fails it. */
  ask(question: Question): Promise<unknown> {
    const answer = this.calls.call((id) => this.send({ t: 'ask', id, question }, true));
    return within(answer, ASK_TIMEOUT_MS, `worker ${this.index} answering`, () => undefined);
  }
}
