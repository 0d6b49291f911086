/**
 * One worker of `workers: N`: a SidecacheServer without admin or buses (the primary holds them),
 * fed over IPC with what the buses say, and asking the primary to spread its own invalidations.
 */
import { Dispatcher } from '../invalidation/dispatch.js';
import { BUS_DOWN } from '../invalidation/while-down.js';
import type { Logger } from '../log.js';
import { SidecacheServer } from '../server.js';
import { Calls } from './calls.js';
import type { FromWorker, Question, ToWorker } from './messages.js';
import { workerConfig, workerGrace } from './worker-config.js';

function send(message: FromWorker): void {
  process.send?.(message);
}

/** Runs until the primary says stop (or goes away), or SIGTERM/SIGINT; resolves with the exit code. */
export async function runWorker(log: Logger): Promise<number> {
  const inbox = new EarlyInbox();
  send({ t: 'hello' });
  const init = await inbox.init;
  // Stopped before it was told what to build (a reload's new workers that were not kept).
  if (init === undefined) return 0;
  const workers = init.workers;
  const workerLog = log.child({ worker: init.index });
  const calls = new Calls();
  const server = new SidecacheServer(workerConfig(init.config, workers), {
    log: workerLog,
    // A local invalidation is answered once the other workers applied it and the buses have it.
    worker: { index: init.index, peers: (target, source, removed) => calls.call((id) => send({ t: 'invalidate', id, target, source, removed })) },
  });
  // Before listening: a worker (re)started while a bus is down serves by the same whileDown as the others.
  server.store.degrade(init.degradation);
  const fromBus = new Dispatcher(server.store, workerLog.child({ component: 'invalidation' }), (tables, invalidate) => {
    for (const listener of server.postgresListeners) listener.expandTables(tables, invalidate);
  });
  let stopping: Promise<number> | undefined;
  const stop = (graceMs: number): Promise<number> =>
    (stopping ??= server.stop(graceMs).then(
      () => 0,
      (err: unknown) => {
        workerLog.error('stop failed', { err });
        return 1;
      },
    ));
  let stopped = (_code: number): void => undefined;
  const finished = new Promise<number>((resolve) => (stopped = resolve));
  const answer = async (question: Question): Promise<unknown> => {
    switch (question.q) {
      case 'metrics':
        return server.registry.getMetricsAsJSON();
      case 'summary':
        return server.summary();
      case 'entries':
        return server.entries(question.query);
      case 'explain':
        return server.postgresListeners.find((l) => l.name === question.listener)?.explain(question.sql, question.database, question.user) ?? null;
      case 'explainHttp':
        return (
          server.httpListeners.find((l) => l.name === question.listener)?.explain(question.url, question.method, question.headers, question.reveal) ?? null
        );
      case 'reload':
        return server.reload(workerConfig(question.config, workers));
    }
  };
  const onMessage = (message: ToWorker): void => {
    switch (message.t) {
      case 'apply': {
        const removed = message.expand
          ? fromBus.applyInSlices(message.target, message.source)
          : Promise.resolve(server.dispatcher.apply(message.target, message.source));
        if (message.id !== undefined) void removed.then((n) => send({ t: 'applied', id: message.id!, removed: n }));
        return;
      }
      case 'degrade':
        return server.store.degrade(message.degradation);
      case 'spread':
        return calls.settle(message.id, undefined);
      case 'ask':
        return void answer(message.question).then(
          (value) => send({ t: 'answer', id: message.id, value }),
          (err: unknown) => send({ t: 'answer', id: message.id, error: (err as Error).message }),
        );
      case 'stop':
        return void stop(message.graceMs).then(stopped);
      case 'init':
        return;
    }
  };
  inbox.deliverTo(onMessage);
  // The primary gone (killed), this worker would serve with nobody relaying invalidations: it stops.
  process.once('disconnect', () => {
    // Nobody relays invalidations any more: nothing is answered from the store while it drains.
    server.store.degrade({ reason: BUS_DOWN, maxAgeMs: 0 });
    calls.failAll('the primary is gone');
    workerLog.warn('the primary is gone: stopping');
    void stop(server.config.shutdownGrace).then(stopped);
  });
  // A terminal's Ctrl-C reaches the primary and every worker: each stops by the same deadline.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => void stop(workerGrace(server.config.shutdownGrace)).then(stopped));
  // SIGHUP is the primary's: it validates the file and hands it to every worker.
  process.on('SIGHUP', () => undefined);
  await server.start();
  send({ t: 'ready' });
  return finished;
}

/**
 * Holds what the primary sends until the worker can apply it. Node emits IPC messages on
 * process.nextTick and runs promise continuations only after every tick queued, so a `degrade` or
 * `apply` read in the same chunk as `init` would be emitted before the worker has built its store
 * and its handler: unheard, it would be lost (a worker serving while a bus is down).
 */
class EarlyInbox {
  /** The primary's init; undefined when it said stop first. */
  readonly init: Promise<Extract<ToWorker, { t: 'init' }> | undefined>;
  readonly #early: ToWorker[] = [];
  #handler: ((message: ToWorker) => void) | undefined;

  constructor() {
    let resolve!: (message: Extract<ToWorker, { t: 'init' }> | undefined) => void;
    let reject!: (err: Error) => void;
    this.init = new Promise((res, rej) => ((resolve = res), (reject = rej)));
    let initialised = false;
    process.on('message', (message: ToWorker) => {
      if (this.#handler !== undefined) return this.#handler(message);
      if (initialised) return void this.#early.push(message);
      initialised = true;
      if (message.t === 'init') resolve(message);
      else if (message.t === 'stop') resolve(undefined);
      else reject(new Error(`expected init from the primary, got ${message.t}`));
    });
  }

  /** From now on messages go to `handler`, those held first, in order. */
  deliverTo(handler: (message: ToWorker) => void): void {
    this.#handler = handler;
    for (const message of this.#early.splice(0)) handler(message);
  }
}
