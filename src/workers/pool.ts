/**
 * The workers of `workers: N`, seen from the primary: forks them (node:cluster, round-robin),
 * answers their `hello` with what to build, relays to them, asks them, and replaces one that dies
 * (with backoff, as a bus reconnects), with an empty store and the current degradation.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Degradation, InvalidationTarget } from '../cache/types.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { within } from '../invalidation/bus.js';
import { Calls } from './calls.js';
import { workerGrace } from './worker-config.js';
import type { FromWorker, Question, ToWorker } from './messages.js';

/** Restart delays of a worker that died: doubling from BASE to CAP. */
const BASE_MS = 100;
const CAP_MS = 5_000;
/** How long the admin waits for a worker's answer (prom-client's cluster aggregation waits as long). */
const ASK_TIMEOUT_MS = 5_000;

/** A worker that lived this long before dying starts the delays again from BASE. */
const STABLE_MS = 10_000;

export interface PoolDeps {
  count: number;
  /** The configuration a worker builds from (the primary's running one). */
  config(): Config;
  /** How stores serve now (`whileDown`); a worker gets it before it listens. */
  degradation(): Degradation | undefined;
  /** A worker's local invalidation: resolves once the others and the buses have it. */
  spread(from: number, target: InvalidationTarget, source: string, removed: number): Promise<void>;
  log: Logger;
}

interface Slot {
  index: number;
  worker: Worker | undefined;
  /** Sent `init`: from then on it gets every relay (before, it has no store to relay to). */
  inited: boolean;
  ready: boolean;
  calls: Calls;
  startedAt: number;
  attempt: number;
  timer: NodeJS.Timeout | undefined;
  /** Why it is not serving, for /readyz. */
  reason: string;
}

export class WorkerPool {
  readonly #deps: PoolDeps;
  readonly #slots: Slot[];
  #stopping = false;
  /** Settled when every worker first reported ready; rejected if one exits before. */
  #starting: { resolve(): void; reject(err: Error): void } | undefined;

  constructor(deps: PoolDeps) {
    this.#deps = deps;
    this.#slots = Array.from({ length: deps.count }, (_, index) => ({
      index: index + 1,
      worker: undefined,
      inited: false,
      ready: false,
      calls: new Calls(),
      startedAt: 0,
      attempt: 0,
      timer: undefined,
      reason: 'starting',
    }));
  }

  /** Forks every worker; resolves once each listens. A worker that exits first fails the start. */
  start(): Promise<void> {
    // The primary accepts and hands connections out in turn: the kernel's choice (SCHED_NONE) tends to load one worker.
    cluster.schedulingPolicy = cluster.SCHED_RR;
    const started = new Promise<void>((resolve, reject) => (this.#starting = { resolve, reject }));
    for (const slot of this.#slots) this.#fork(slot);
    return started;
  }

  /** Why each worker that does not serve does not, by worker number (/readyz). */
  reason(index: number): string | undefined {
    const slot = this.#slots[index - 1];
    return slot === undefined || slot.ready ? undefined : slot.reason;
  }

  get indexes(): number[] {
    return this.#slots.map((s) => s.index);
  }

  /** Sends to every worker that has a store. */
  broadcast(message: ToWorker): void {
    for (const slot of this.#slots) if (slot.inited) this.#send(slot, message);
  }

  /**
   * Has every worker (but `except`) apply `target`; resolves with the entries they removed once
   * each answered or exited (a worker that exits has nothing left to remove). Never rejects.
   */
  apply(target: InvalidationTarget, source: string, options: { expand: boolean; except?: number }): Promise<number> {
    const answers = this.#slots
      .filter((s) => s.inited && s.index !== options.except)
      .map((slot) => slot.calls.call<number>((id) => this.#send(slot, { t: 'apply', target, source, expand: options.expand, id }, true)).catch(() => 0));
    return Promise.all(answers).then((counts) => counts.reduce((a, b) => a + b, 0));
  }

  /** Asks every serving worker; answers by worker number. A worker that fails or exits is left out. */
  async askAll(question: Question): Promise<{ worker: number; value: unknown }[]> {
    const answers = await Promise.all(
      this.#slots
        .filter((s) => s.ready)
        .map((slot) =>
          this.ask(slot.index, question).then(
            (value) => ({ worker: slot.index, value }),
            () => undefined,
          ),
        ),
    );
    return answers.filter((a) => a !== undefined);
  }

  /**
   * Asks one worker (the first serving one when `index` is undefined). A worker that has not
   * answered within ASK_TIMEOUT_MS (stuck) fails the question, so that /metrics does not hang on it.
   */
  ask(index: number | undefined, question: Question): Promise<unknown> {
    const slot = index === undefined ? this.#slots.find((s) => s.ready) : this.#slots[index - 1];
    if (slot === undefined || !slot.inited) return Promise.reject(new Error('no worker serves'));
    const answer = slot.calls.call((id) => this.#send(slot, { t: 'ask', id, question }, true));
    return within(answer, ASK_TIMEOUT_MS, `worker ${slot.index} answering`, () => undefined);
  }

  /** Asks every worker to stop within `graceMs`, and kills those still there at the deadline; true when one was killed. */
  async stop(graceMs: number): Promise<boolean> {
    this.#stopping = true;
    const running = this.#slots.filter((s) => {
      if (s.timer !== undefined) clearTimeout(s.timer);
      return s.worker !== undefined;
    });
    const exits = running.map((slot) => new Promise<void>((resolve) => slot.worker!.once('exit', () => resolve())));
    for (const slot of running) this.#send(slot, { t: 'stop', graceMs: workerGrace(graceMs) });
    let forced = false;
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
    await Promise.race([Promise.all(exits), deadline]);
    for (const slot of running) {
      if (slot.worker === undefined) continue;
      forced = true;
      slot.worker.process.kill('SIGKILL');
    }
    await Promise.all(exits);
    return forced;
  }

  #fork(slot: Slot): void {
    slot.timer = undefined;
    if (this.#stopping) return;
    const worker = cluster.fork();
    slot.worker = worker;
    slot.inited = false;
    slot.ready = false;
    slot.reason = 'starting';
    slot.calls = new Calls();
    slot.startedAt = performance.now();
    worker.on('message', (message: FromWorker) => this.#onMessage(slot, worker, message));
    worker.once('exit', (code, signal) => this.#onExit(slot, worker, code, signal));
    // A send to a worker that is exiting fails here: its exit is handled by 'exit'.
    worker.on('error', (err) => this.#deps.log.debug('worker channel error', { worker: slot.index, err: err.message }));
  }

  #onMessage(slot: Slot, worker: Worker, message: FromWorker): void {
    if (slot.worker !== worker) return;
    switch (message.t) {
      case 'hello':
        this.#send(slot, { t: 'init', index: slot.index, workers: this.#deps.count, config: this.#deps.config(), degradation: this.#deps.degradation() });
        slot.inited = true;
        return;
      case 'ready':
        slot.ready = true;
        this.#deps.log.info('worker ready', { worker: slot.index, pid: worker.process.pid });
        if (this.#starting !== undefined && this.#slots.every((s) => s.ready)) {
          this.#starting.resolve();
          this.#starting = undefined;
        }
        return;
      case 'invalidate':
        return void this.#deps
          .spread(slot.index, message.target, message.source, message.removed)
          .then(() => this.#send(slot, { t: 'spread', id: message.id }));
      case 'applied':
        return slot.calls.settle(message.id, message.removed);
      case 'answer':
        return slot.calls.settle(message.id, message.value, message.error);
    }
  }

  #onExit(slot: Slot, worker: Worker, code: number | null, signal: string | null): void {
    if (slot.worker !== worker) return;
    slot.worker = undefined;
    slot.inited = false;
    slot.ready = false;
    slot.calls.failAll('the worker exited');
    if (this.#stopping) return;
    const exit = signal ?? `code ${code}`;
    if (this.#starting !== undefined) {
      // Still starting: as a single process does, the start fails (an address in use, a bad certificate).
      this.#starting.reject(new Error(`worker ${slot.index} exited (${exit}) before it was ready`));
      this.#starting = undefined;
      return;
    }
    if (performance.now() - slot.startedAt >= STABLE_MS) slot.attempt = 0;
    const delay = Math.min(CAP_MS, BASE_MS * 2 ** slot.attempt);
    slot.attempt++;
    slot.reason = `exited (${exit}), restarting`;
    this.#deps.log.error('worker exited; starting another', { worker: slot.index, pid: worker.process.pid, exit, delayMs: delay });
    slot.timer = setTimeout(() => this.#fork(slot), delay);
  }

  /** Sends to a worker; a worker that is going away misses it (its store goes with it). `strict` throws instead. */
  #send(slot: Slot, message: ToWorker, strict = false): void {
    const worker = slot.worker;
    if (worker === undefined || !worker.isConnected()) {
      if (strict) throw new Error(`worker ${slot.index} is not connected`);
      return;
    }
    worker.send(message);
  }
}
