/**
 * The workers of `workers: N`, seen from the primary: forks them (node:cluster, round-robin),
 * answers their `hello` with what to build, relays to them, asks them, replaces one that dies
 * (with backoff, as a bus reconnects) with an empty store and the current degradation, and
 * replaces them all for a reload that needs new processes (new ones first, as nginx does).
 */
import cluster from 'node:cluster';
import type { Degradation, InvalidationTarget } from '../cache/types.js';
import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import { Member } from './member.js';
import type { FromWorker, Question } from './messages.js';
import { workerGrace } from './worker-config.js';

/** Restart delays of a worker that died: doubling from BASE to CAP. */
const BASE_MS = 100;
const CAP_MS = 5_000;
/** A worker that lived this long before dying starts the delays again from BASE. */
const STABLE_MS = 10_000;

export interface PoolDeps {
  count: number;
  /** The configuration a worker builds from (the primary's running one). */
  config(): Config;
  /** How stores serve now (`whileDown`); a worker gets it before it listens. */
  degradation(): Degradation | undefined;
  /** A worker's local invalidation: resolves once the others (all but `from`) and the buses have it. */
  spread(from: Member, target: InvalidationTarget, source: string, removed: number): Promise<void>;
  log: Logger;
}

interface Slot {
  index: number;
  /** The process serving as this worker now. */
  member: Member | undefined;
  attempt: number;
  timer: NodeJS.Timeout | undefined;
  /** Why it is not serving, for /readyz. */
  reason: string;
}

/** A start (the first, or a reload's new workers) waiting for every member to be ready. */
interface Starting {
  members: Member[];
  resolve(): void;
  reject(err: Error): void;
}

export class WorkerPool {
  readonly #deps: PoolDeps;
  readonly #slots: Slot[];
  /** Every process with a store, or about to have one: serving, starting, or draining after a replacement. */
  readonly #members = new Set<Member>();
  #stopping = false;
  #starting: Starting | undefined;

  constructor(deps: PoolDeps) {
    this.#deps = deps;
    this.#slots = Array.from({ length: deps.count }, (_, i) => ({ index: i + 1, member: undefined, attempt: 0, timer: undefined, reason: 'starting' }));
  }

  /** Forks every worker; resolves once each listens. A worker that exits first fails the start. */
  start(): Promise<void> {
    // The primary accepts and hands connections out in turn: the kernel's choice (SCHED_NONE) tends to load one worker.
    cluster.schedulingPolicy = cluster.SCHED_RR;
    const members = this.#slots.map((slot) => (slot.member = this.#fork(slot.index)));
    return this.#awaitReady(members);
  }

  /**
   * Replaces every worker by one built from `config`: the new ones start beside the old (same
   * ports), and once all of them serve, the old ones stop within the grace, finishing what they
   * have in flight. If a new one fails to start, the new ones stop and the old ones keep serving.
   */
  async replaceAll(config: Config): Promise<void> {
    const fresh = this.#slots.map((slot) => this.#fork(slot.index, config));
    try {
      await this.#awaitReady(fresh);
    } catch (err) {
      // Those that started may already have taken connections: they finish them, as a replaced worker does.
      for (const member of fresh) member.send({ t: 'stop', graceMs: workerGrace(config.shutdownGrace) });
      throw err;
    }
    for (const [i, slot] of this.#slots.entries()) {
      const old = slot.member;
      if (slot.timer !== undefined) clearTimeout(slot.timer);
      slot.timer = undefined;
      slot.attempt = 0;
      slot.member = fresh[i];
      // Draining, it still gets every relay until it exits: its open connections may still be answered from its store.
      old?.send({ t: 'stop', graceMs: workerGrace(config.shutdownGrace) });
    }
  }

  /** Why each worker that does not serve does not, by worker number (/readyz). */
  reason(index: number): string | undefined {
    const slot = this.#slots[index - 1];
    return slot === undefined || slot.member?.ready === true ? undefined : slot.reason;
  }

  get indexes(): number[] {
    return this.#slots.map((s) => s.index);
  }

  /** Sends to every process that has a store. */
  broadcast(message: Parameters<Member['send']>[0]): void {
    for (const member of this.#members) if (member.inited) member.send(message);
  }

  /**
   * Has every process with a store (but `except`) apply `target`; resolves with the entries they
   * removed once each answered or exited (a process that exits has nothing left to remove). Never rejects.
   */
  apply(target: InvalidationTarget, source: string, options: { expand: boolean; except?: Member }): Promise<number> {
    const answers = [...this.#members]
      .filter((m) => m.inited && m !== options.except)
      .map((member) => member.calls.call<number>((id) => member.send({ t: 'apply', target, source, expand: options.expand, id }, true)).catch(() => 0));
    return Promise.all(answers).then((counts) => counts.reduce((a, b) => a + b, 0));
  }

  /** Asks every serving worker; answers by worker number. A worker that fails, exits or is stuck is left out. */
  async askAll(question: Question): Promise<{ worker: number; value: unknown }[]> {
    const serving = this.#slots.flatMap((s) => (s.member?.ready === true ? [s.member] : []));
    const answers = await Promise.all(
      serving.map((m) =>
        m.ask(question).then(
          (value) => ({ worker: m.index, value }),
          () => undefined,
        ),
      ),
    );
    return answers.filter((a) => a !== undefined);
  }

  /** Asks one worker (the first serving one when `index` is undefined). */
  ask(index: number | undefined, question: Question): Promise<unknown> {
    const member = index === undefined ? this.#slots.find((s) => s.member?.ready === true)?.member : this.#slots[index - 1]?.member;
    if (member === undefined || !member.inited) return Promise.reject(new Error('no worker serves'));
    return member.ask(question);
  }

  /** Asks every process to stop within `graceMs`, and kills those still there at the deadline; true when one was killed. */
  async stop(graceMs: number): Promise<boolean> {
    this.#stopping = true;
    for (const slot of this.#slots) if (slot.timer !== undefined) clearTimeout(slot.timer);
    const running = [...this.#members];
    const exits = running.map((m) => new Promise<void>((resolve) => (m.exited ? resolve() : m.worker.once('exit', () => resolve()))));
    for (const member of running) member.send({ t: 'stop', graceMs: workerGrace(graceMs) });
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
    await Promise.race([Promise.all(exits), deadline]);
    const left = running.filter((m) => !m.exited);
    for (const member of left) member.worker.process.kill('SIGKILL');
    await Promise.all(exits);
    return left.length > 0;
  }

  #fork(index: number, config?: Config): Member {
    const member = new Member(index, config);
    this.#members.add(member);
    member.worker.on('message', (message: FromWorker) => this.#onMessage(member, message));
    member.worker.once('exit', (code, signal) => this.#onExit(member, code, signal));
    // A send to a worker that is exiting fails here: its exit is handled by 'exit'.
    member.worker.on('error', (err) => this.#deps.log.debug('worker channel error', { worker: index, err: err.message }));
    return member;
  }

  /** Resolves once every one of `members` is ready; rejects when one exits first. */
  #awaitReady(members: Member[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#starting = { members, resolve, reject };
      this.#checkStarted();
    });
  }

  #checkStarted(): void {
    const starting = this.#starting;
    if (starting === undefined || !starting.members.every((m) => m.ready)) return;
    this.#starting = undefined;
    starting.resolve();
  }

  #onMessage(member: Member, message: FromWorker): void {
    switch (message.t) {
      case 'hello':
        member.send({
          t: 'init',
          index: member.index,
          workers: this.#deps.count,
          config: member.config ?? this.#deps.config(),
          degradation: this.#deps.degradation(),
        });
        member.inited = true;
        return;
      case 'ready':
        member.ready = true;
        this.#deps.log.info('worker ready', { worker: member.index, pid: member.pid });
        return this.#checkStarted();
      case 'invalidate':
        return void this.#deps.spread(member, message.target, message.source, message.removed).then(() => member.send({ t: 'spread', id: message.id }));
      case 'applied':
        return member.calls.settle(message.id, message.removed);
      case 'answer':
        return member.calls.settle(message.id, message.value, message.error);
    }
  }

  #onExit(member: Member, code: number | null, signal: string | null): void {
    member.exited = true;
    this.#members.delete(member);
    member.calls.failAll('the worker exited');
    const exit = signal ?? `code ${code}`;
    if (this.#starting?.members.includes(member) === true) {
      // Starting: as a single process does, the start fails (an address in use, a bad certificate).
      const starting = this.#starting;
      this.#starting = undefined;
      return starting.reject(new Error(`worker ${member.index} exited (${exit}) before it was ready`));
    }
    const slot = this.#slots[member.index - 1]!;
    // A replaced worker that drained, or one of a reload's new ones that was not kept.
    if (slot.member !== member || this.#stopping) return;
    slot.member = undefined;
    if (performance.now() - member.startedAt >= STABLE_MS) slot.attempt = 0;
    const delay = Math.min(CAP_MS, BASE_MS * 2 ** slot.attempt);
    slot.attempt++;
    slot.reason = `exited (${exit}), restarting`;
    this.#deps.log.error('worker exited; starting another', { worker: slot.index, pid: member.pid, exit, delayMs: delay });
    slot.timer = setTimeout(() => {
      slot.timer = undefined;
      if (this.#stopping) return;
      slot.reason = 'starting';
      slot.member = this.#fork(slot.index);
    }, delay);
  }
}
