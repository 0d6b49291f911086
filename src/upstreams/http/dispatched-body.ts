/**
 * A fill's upstream request through undici's dispatch handler interface rather than `request()`:
 * the head settles one promise and each body chunk goes straight to the SharedBody reading it
 * (`body-source.ts`). `request()` wraps every response in a body stream and an async resource, and
 * a miss paid for both (docs/architecture.md "HTTP miss").
 */
import type { IncomingHttpHeaders } from 'node:http';
import { type Dispatcher, errors } from 'undici';
import type { PushSource, SourceSink } from './body-source.js';
import type { InterimResponse } from './forward.js';

/** A response head, with its body as it arrives. */
export interface DispatchedResponse {
  readonly statusCode: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: DispatchedBody;
}

/** What aborts a request: an AbortSignal or an EventEmitter with `aborted`, as undici takes (`request-abort.ts`). */
export type AbortSignalLike = { readonly aborted: boolean; readonly reason?: unknown } & (
  | { once(event: 'abort', listener: () => void): unknown; off(event: 'abort', listener: () => void): unknown }
  | { addEventListener(type: 'abort', listener: () => void, options: { once: true }): void; removeEventListener(type: 'abort', listener: () => void): void }
);

/** What a body that is only dropped (a 304, a 5xx replaced by a stale copy) is read of before the connection is given up instead. */
const DUMP_LIMIT = 128 * 1024;

/**
 * One response body, pushed by undici. Until a SharedBody attaches (a microtask after the head,
 * while the same socket read may already have delivered chunks), what comes is held in order.
 */
export class DispatchedBody implements PushSource {
  readonly #controller: Dispatcher.DispatchController;
  #sink: SourceSink | undefined;
  /** Chunks before the sink takes them (none once dumped); undefined from then on. */
  #early: Buffer[] | undefined = [];
  #ended = false;
  #error: Error | undefined;
  #dumped: { bytes: number; done: () => void } | undefined;
  /** The declared Content-Length, NaN when there is none. */
  readonly #declared: number;

  constructor(controller: Dispatcher.DispatchController, declared = NaN) {
    this.#controller = controller;
    this.#declared = declared;
  }

  /**
   * What came before is delivered a microtask later, as a stream's first 'data' would be: the
   * SharedBody's first reader exists by then, and a body that has all come is not ended before it.
   */
  attach(sink: SourceSink): () => void {
    queueMicrotask(() => {
      const early = this.#early;
      this.#early = undefined;
      this.#sink = sink;
      for (const chunk of early!) this.data(chunk);
      if (this.#error !== undefined) this.fail(this.#error);
      else if (this.#ended) this.end();
    });
    return () => this.destroy();
  }

  /**
   * Reads the body to its end for nobody, or ends the request once it declares or brings more than
   * `DUMP_LIMIT` (as undici's `dump()`): settles either way, and never waits for a large body to
   * come (a stale copy standing in for a 5xx answers at once).
   */
  dump(): Promise<void> {
    if (this.#ended || this.#error !== undefined) return Promise.resolve();
    let bytes = 0;
    for (const chunk of this.#early ?? []) bytes += chunk.length;
    this.#early = [];
    if (this.#declared > DUMP_LIMIT || bytes > DUMP_LIMIT) {
      this.destroy();
      return Promise.resolve();
    }
    return new Promise((done) => (this.#dumped = { bytes, done }));
  }

  /** Ends the request at once; what comes after is for nobody. */
  destroy(): void {
    if (!this.#controller.aborted) this.#controller.abort(new errors.RequestAbortedError());
  }

  data(chunk: Buffer): void {
    const sink = this.#sink;
    if (sink === undefined) {
      if (this.#dumped === undefined) this.#early?.push(chunk);
      else if ((this.#dumped.bytes += chunk.length) > DUMP_LIMIT) this.destroy();
      return;
    }
    // Cancelled meanwhile: what comes is for nobody.
    if (sink.cancelled()) return;
    sink.push(chunk);
    // Once the body has ended, the connection may be another request's: never paused or resumed.
    if (sink.keeping() || sink.cancelled() || this.#ended || this.#error !== undefined) return;
    // Past the limit the readers pace the upstream: undici stops reading the socket while paused.
    this.#controller.pause();
    sink.awaitDemand(() => {
      if (!sink.cancelled() && !this.#ended && this.#error === undefined) this.#controller.resume();
    });
  }

  end(): void {
    this.#ended = true;
    this.#dumped?.done();
    const sink = this.#sink;
    if (sink !== undefined && !sink.cancelled()) sink.end();
  }

  fail(error: Error): void {
    this.#error = error;
    this.#dumped?.done();
    const sink = this.#sink;
    if (sink !== undefined && !sink.cancelled()) sink.fail(error);
  }
}

/**
 * The handler of one request: `settle` hears the final head or the failure before it, `onInfo`
 * each interim (1xx) response. An abort before the request has a connection is applied when it
 * gets one, as undici's `request()` does.
 */
export class DispatchedRequest implements Dispatcher.DispatchHandler {
  readonly #settle: (err: Error | undefined, response: DispatchedResponse | undefined) => void;
  readonly #onInfo: ((info: InterimResponse) => void) | undefined;
  readonly #signal: AbortSignalLike | undefined;
  #controller: Dispatcher.DispatchController | undefined;
  #body: DispatchedBody | undefined;
  #reason: Error | undefined;
  readonly #onAbort = (): void => {
    const reason = (this.#signal!.reason as Error | undefined) ?? new errors.RequestAbortedError();
    this.#reason = reason;
    this.#controller?.abort(reason);
  };

  constructor(
    settle: (err: Error | undefined, response: DispatchedResponse | undefined) => void,
    onInfo: ((info: InterimResponse) => void) | undefined,
    signal: AbortSignalLike | undefined,
  ) {
    this.#settle = settle;
    this.#onInfo = onInfo;
    this.#signal = signal;
    if (signal === undefined) return;
    if (signal.aborted) this.#reason = (signal.reason as Error | undefined) ?? new errors.RequestAbortedError();
    else if ('once' in signal) signal.once('abort', this.#onAbort);
    else signal.addEventListener('abort', this.#onAbort, { once: true });
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#reason !== undefined) controller.abort(this.#reason);
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    if (statusCode < 200) {
      this.#onInfo?.({ statusCode, headers: headers as Record<string, string | string[]> });
      return;
    }
    this.#body = new DispatchedBody(controller, Number(headers['content-length']));
    this.#settle(undefined, { statusCode, headers, body: this.#body });
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#body!.data(chunk);
  }

  onResponseEnd(): void {
    this.#unlisten();
    this.#body!.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.#unlisten();
    if (this.#body === undefined) this.#settle(error, undefined);
    else this.#body.fail(error);
  }

  #unlisten(): void {
    const signal = this.#signal;
    if (signal === undefined) return;
    if ('off' in signal) signal.off('abort', this.#onAbort);
    else signal.removeEventListener('abort', this.#onAbort);
  }
}
