/** Records the backend frames of one response, and says whether they may be stored for replay. */
import { Backend, TxStatus } from './codes.js';
import type { Frame } from './framing.js';
import { READY_IDLE } from './messages.js';

/** Frames a storable response may hold before its CommandComplete (protocol-flow.html, Extended Query). */
const STORABLE = new Set<number>([
  Backend.ParseComplete,
  Backend.BindComplete,
  Backend.ParameterDescription,
  Backend.RowDescription,
  Backend.NoData,
  Backend.DataRow,
]);

/**
 * Records the backend frames of one response for replay. The response is storable only if it
 * holds nothing but result frames, ends with one CommandComplete and an idle ReadyForQuery, and
 * fits the limit. Errors, notices, ParameterStatus and notifications are forwarded, never stored.
 */
export class Capture {
  readonly #limit: number;
  #frames: Buffer[] = [];
  #bytes = 0;
  #clean = true;
  #complete = false;

  constructor(limit: number) {
    this.#limit = limit;
  }

  add(frame: Frame): void {
    if (!this.#clean || frame.code === Backend.ReadyForQuery) return;
    if (this.#complete || !(STORABLE.has(frame.code) || frame.code === Backend.CommandComplete)) return this.#spoil();
    this.#bytes += frame.bytes.length;
    if (this.#bytes + READY_IDLE.length > this.#limit) return this.#spoil();
    // Frames are slices of a chunk the socket handed over; copy so the chunk can be freed.
    this.#frames.push(Buffer.from(frame.bytes));
    if (frame.code === Backend.CommandComplete) this.#complete = true;
  }

  /** The bytes to store, with ReadyForQuery('I') at the end, or undefined when not storable. */
  result(status: number | undefined): Buffer | undefined {
    if (!this.#clean || !this.#complete || status !== TxStatus.Idle) return undefined;
    return Buffer.concat([...this.#frames, READY_IDLE]);
  }

  #spoil(): void {
    this.#clean = false;
    this.#frames = [];
  }
}
