/**
 * The abort switch of one upstream request. undici takes an EventEmitter as a request's `signal`
 * as well as an AbortSignal (https://undici.nodejs.org/#/docs/api/Dispatcher?id=parameter-requestoptions);
 * an emitter costs a fraction of an AbortController (an EventTarget, its listener records), and a
 * fill makes one per miss. It reads as an AbortController does: `abort(reason)`, `signal.aborted`.
 */
import { EventEmitter } from 'node:events';

export class RequestAbort extends EventEmitter {
  aborted = false;
  reason: unknown = undefined;

  /** The emitter itself, as undici's `signal` (so call sites read as with an AbortController). */
  get signal(): this {
    return this;
  }

  /** Aborts once; without a reason, with the AbortError an AbortController gives. */
  abort(reason?: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason ?? new DOMException('This operation was aborted', 'AbortError');
    this.emit('abort');
  }
}

/** What `Upstream.request` is given to abort a request: an AbortController or a RequestAbort. */
export interface AbortSwitch {
  abort(reason?: unknown): void;
  readonly signal: { readonly aborted: boolean };
}
