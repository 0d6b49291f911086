/**
 * A client's reader of a SharedBody (`body-tee.ts`): its own cursor into the body's chunks, and an
 * async iterator of them. The body moves the cursor; a reader only asks it (`CursorOps`).
 */
import type { SharedBody } from './body-tee.js';

export const DONE: IteratorReturnResult<undefined> = { value: undefined, done: true };

/** One client's cursor into a SharedBody: an async iterator of its chunks. */
export interface BodyReader extends AsyncIterableIterator<Buffer, undefined> {
  /** Stops reading (a `for await` that breaks or throws calls this); safe to call more than once. */
  release(): void;
  /**
   * What `next()` would give now, without waiting: the next chunk, null at the end (or once
   * released), undefined when the next chunk has not come yet; throws the read's failure.
   */
  poll(): Buffer | null | undefined;
}

export interface Cursor {
  /** Absolute index of the next chunk. */
  index: number;
  /** Absolute offset of the next byte. */
  pos: number;
  wake: (() => void) | undefined;
}

export interface CursorOps {
  next(body: SharedBody, cursor: Cursor): Promise<IteratorResult<Buffer, undefined>>;
  poll(body: SharedBody, cursor: Cursor): Buffer | null | undefined;
  release(body: SharedBody, cursor: Cursor): void;
}

/** A reader is its own cursor into its body. */
export class Reader implements BodyReader, Cursor {
  index = 0;
  pos = 0;
  wake: (() => void) | undefined = undefined;
  readonly #body: SharedBody;
  readonly #ops: CursorOps;

  constructor(body: SharedBody, ops: CursorOps) {
    this.#body = body;
    this.#ops = ops;
  }

  next(): Promise<IteratorResult<Buffer, undefined>> {
    return this.#ops.next(this.#body, this);
  }

  poll(): Buffer | null | undefined {
    return this.#ops.poll(this.#body, this);
  }

  release(): void {
    this.#ops.release(this.#body, this);
  }

  return(): Promise<IteratorResult<Buffer, undefined>> {
    this.release();
    return Promise.resolve(DONE);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
