/**
 * One upstream body read once for every client of a fill (docs/architecture.md "HTTP miss").
 *
 * While the body may still be stored (within the limit), it is read at the upstream's pace into
 * one growing buffer, and each client reads from it at its own pace through its own cursor: no
 * client, the leader included, slows the fill or the others. When the body passes the limit (or
 * the limit is 0) nothing more is kept ahead of the readers: the upstream is read only when every
 * reader has taken all that was read (backpressure), and what all have taken is dropped.
 */

import { type BodySource, readSource, Sink, type SinkOps } from './body-source.js';
import { type BodyReader, type Cursor, type CursorOps, DONE, Reader } from './body-reader.js';

/** Bytes held by every SharedBody in the process (a bounded counter, for tests and the curious). */
let held = 0;

/** Bytes of upstream bodies held by fills right now (the stored body counts once). */
export function heldBodyBytes(): number {
  return held;
}

export class SharedBody {
  /** Ends the upstream request at once (`body-source.ts`). */
  readonly #stop: () => void;
  readonly #limit: number;
  #chunks: Buffer[] = [];
  /** Absolute offset of each chunk in `#chunks`. */
  #starts: number[] = [];
  /** Chunks dropped from the front (absolute index of `#chunks[0]`). */
  #dropped = 0;
  #size = 0;
  #keeping: boolean;
  #ended = false;
  #failed = false;
  #error: unknown;
  #cancelled = false;
  /** The chunks became the stored body, which the store counts. */
  #handedOver = false;
  readonly #readers = new Set<Cursor>();
  #demand: (() => void) | undefined;
  readonly #kept: Promise<Buffer | undefined>;
  #keep: (body: Buffer | undefined) => void = () => {};
  #fail: (error: unknown) => void = () => {};
  readonly #onError: (error: unknown) => void;

  /** `limit` 0 keeps nothing: the body only passes through to its readers. */
  /** `onError` hears of a read that failed (not one sidecache cancelled): the upstream's failure. */
  constructor(source: BodySource, limit: number, onError: (error: unknown) => void = () => undefined) {
    this.#limit = limit;
    this.#onError = onError;
    this.#keeping = limit > 0;
    this.#kept = new Promise((resolve, reject) => {
      this.#keep = resolve;
      this.#fail = reject;
    });
    if (!this.#keeping) this.#keep(undefined);
    this.#stop = readSource(source, new Sink(this, SharedBody.#sinkOps));
  }

  /** What the source reading this body calls (`body-source.ts`): one object for every body, as `#cursors`. */
  static readonly #sinkOps: SinkOps<SharedBody> = {
    cancelled: (body) => body.#cancelled,
    keeping: (body) => body.#keeping,
    finished: (body) => body.#ended || body.#failed,
    push: (body, chunk) => body.#push(chunk),
    end: (body) => body.#end(),
    fail: (body, error) => body.#failWith(error),
    awaitDemand: (body, resume) => {
      body.#demand = resume;
      body.#askUpstream();
    },
  };

  /**
   * The whole body once it has been read (the very buffer readers then read from), or undefined
   * when it passed the limit (or the limit is 0); rejects when reading failed while keeping.
   */
  get kept(): Promise<Buffer | undefined> {
    return this.#kept;
  }

  /** Whether a new reader can still start from the first byte. */
  get shareable(): boolean {
    return this.#keeping && !this.#failed && !this.#cancelled;
  }

  /** A new reader from the first byte, or undefined when the start is gone (see `shareable`). */
  reader(): BodyReader | undefined {
    if (this.#dropped > 0 || this.#cancelled || this.#failed || (this.#ended && !this.#handedOver)) return undefined;
    const reader = new Reader(this, SharedBody.#cursors);
    this.#readers.add(reader);
    return reader;
  }

  /**
   * What a reader asks of its body: one object for every reader of every body (not closures per
   * reader, on every miss), reaching the private methods from within the class.
   */
  static readonly #cursors: CursorOps = {
    next: (body, cursor) => body.#next(cursor),
    poll: (body, cursor) => body.#poll(cursor),
    release: (body, cursor) => body.#release(cursor),
  };

  /**
   * Ends the upstream read when nobody reads any more, even while the body could still be stored
   * (the requester left and nobody waits: the fill is not worth an upstream connection).
   */
  abandonIfUnread(): void {
    if (this.#readers.size > 0 || this.#ended || this.#failed || this.#cancelled) return;
    this.#keeping = false;
    this.#keep(undefined);
    this.#cancel();
  }

  #poll(cursor: Cursor): Buffer | null | undefined {
    if (!this.#readers.has(cursor)) return null;
    if (this.#failed) {
      this.#readers.delete(cursor);
      throw this.#error;
    }
    if (cursor.pos < this.#size) return this.#take(cursor);
    if (!this.#ended) return undefined;
    this.#release(cursor);
    return null;
  }

  async #next(cursor: Cursor): Promise<IteratorResult<Buffer, undefined>> {
    for (;;) {
      if (!this.#readers.has(cursor)) return DONE;
      if (this.#failed) {
        this.#readers.delete(cursor);
        throw this.#error;
      }
      if (cursor.pos < this.#size) return { value: this.#take(cursor), done: false };
      if (this.#ended) {
        this.#release(cursor);
        return DONE;
      }
      await new Promise<void>((resolve) => {
        cursor.wake = resolve;
        this.#askUpstream();
      });
    }
  }

  #take(cursor: Cursor): Buffer {
    const i = cursor.index - this.#dropped;
    const chunk = this.#chunks[i]!;
    const part = chunk.subarray(cursor.pos - this.#starts[i]!);
    cursor.index += 1;
    cursor.pos += part.length;
    if (!this.#keeping) this.#dropTaken();
    return part;
  }

  #release(cursor: Cursor): void {
    if (!this.#readers.delete(cursor)) return;
    cursor.wake?.();
    if (this.#keeping) return;
    this.#dropTaken();
    if (this.#readers.size === 0 && !this.#ended && !this.#failed) this.#cancel();
    else this.#askUpstream();
  }

  /** Past the limit, the upstream is read only when every reader has taken all that was read. */
  #askUpstream(): void {
    if (this.#keeping || this.#demand === undefined || this.#readers.size === 0) return;
    for (const r of this.#readers) if (r.pos < this.#size) return;
    const go = this.#demand;
    this.#demand = undefined;
    go();
  }

  #failWith(error: unknown): void {
    this.#onError(error);
    this.#failed = true;
    this.#error = error;
    // The fill's loader reads `kept` and carries the error; this only keeps it from being unhandled
    // (attached here, not on every body: a promise fewer per miss).
    this.#kept.catch(() => {});
    this.#fail(error);
    this.#wakeAll();
    this.#drop(this.#chunks.length);
  }

  #push(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#starts.push(this.#size);
    this.#size += chunk.length;
    held += chunk.length;
    if (this.#keeping && this.#size > this.#limit) {
      // Past the limit: nothing is stored, and the readers left pace the upstream from now on.
      this.#keeping = false;
      this.#keep(undefined);
      this.#dropTaken();
      if (this.#readers.size === 0) this.#cancel();
    }
    this.#wakeAll();
  }

  #end(): void {
    this.#ended = true;
    if (this.#keeping) {
      // One buffer for the store and every reader: the chunks become one body, held once.
      // Always a copy: a chunk may be a view into a larger socket buffer the entry must not pin.
      const whole = Buffer.concat(this.#chunks, this.#size);
      this.#chunks = [whole];
      this.#starts = [0];
      this.#dropped = 0;
      for (const r of this.#readers) r.index = 0;
      // The store holds the body from now on; readers share it.
      held -= this.#size;
      this.#handedOver = true;
      this.#keeping = false;
      this.#keep(whole);
    }
    this.#wakeAll();
  }

  /** Drops the chunks every reader has taken (only once nothing is kept for the store). */
  #dropTaken(): void {
    let min = this.#dropped + this.#chunks.length;
    for (const r of this.#readers) min = Math.min(min, r.index);
    this.#drop(min - this.#dropped);
  }

  #drop(count: number): void {
    if (count <= 0) return;
    if (!this.#handedOver) for (let i = 0; i < count; i += 1) held -= this.#chunks[i]!.length;
    this.#chunks.splice(0, count);
    this.#starts.splice(0, count);
    this.#dropped += count;
  }

  /** Nobody reads and nothing is kept: the upstream request ends. */
  #cancel(): void {
    this.#cancelled = true;
    this.#drop(this.#chunks.length);
    const go = this.#demand;
    this.#demand = undefined;
    go?.();
    this.#stop();
  }

  #wakeAll(): void {
    for (const r of this.#readers) {
      const wake = r.wake;
      r.wake = undefined;
      wake?.();
    }
  }
}
