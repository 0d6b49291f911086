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
    this.#frames.push(owned(frame.bytes));
    if (frame.code === Backend.CommandComplete) this.#complete = true;
  }

  /** The bytes to store, with ReadyForQuery('I') at the end, or undefined when not storable. */
  result(status: number | undefined): Buffer | undefined {
    if (!this.#clean || !this.#complete || status !== TxStatus.Idle) return undefined;
    // Memory of its own, not a slice of Node's shared 8 KiB pool (where Buffer.concat puts small
    // results): a long-lived entry would keep the whole pool slab alive.
    const stored = Buffer.allocUnsafeSlow(this.#bytes + READY_IDLE.length);
    let at = 0;
    for (const frame of this.#frames) at += frame.copy(stored, at);
    READY_IDLE.copy(stored, at);
    return stored;
  }

  #spoil(): void {
    this.#clean = false;
    this.#frames = [];
  }
}

/**
 * `bytes` itself when it is all of its memory (a socket chunk that is one part of a large row, or
 * a message joined from chunks), else a copy: a slice of a chunk shared with other frames would
 * keep the whole chunk alive until the response ends.
 */
function owned(bytes: Buffer): Buffer {
  return bytes.byteOffset === 0 && bytes.length === bytes.buffer.byteLength ? bytes : Buffer.from(bytes);
}
