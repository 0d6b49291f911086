/**
 * One upstream body read once for two: the requester reads it chunk by chunk at its own pace (so a
 * slow client slows the upstream read, as backpressure should) while every chunk is kept for the
 * store, up to a limit; when the requester lets go early, the tee reads the rest itself.
 */

const DONE: IteratorReturnResult<undefined> = { value: undefined, done: true };

/** The requester's side is `for await`; the store's side is `kept`. */
export class BodyTee implements AsyncIterableIterator<Buffer, undefined> {
  readonly #source: AsyncIterator<Buffer>;
  readonly #limit: number;
  #chunks: Buffer[] = [];
  #size = 0;
  #released = false;
  #finished = false;
  readonly #kept: Promise<Buffer | undefined>;
  #keep: (body: Buffer | undefined) => void = () => {};
  #fail: (error: unknown) => void = () => {};

  /** `limit` 0 keeps nothing. */
  constructor(source: AsyncIterable<Buffer>, limit: number) {
    this.#source = source[Symbol.asyncIterator]();
    this.#limit = limit;
    this.#kept = new Promise((resolve, reject) => {
      this.#keep = resolve;
      this.#fail = reject;
    });
  }

  /**
   * Store side: the whole body once it has been read, or undefined when it passed the limit (or
   * the limit is 0); rejects when reading failed.
   */
  get kept(): Promise<Buffer | undefined> {
    return this.#kept;
  }

  /** Requester side: the next chunk, read from the upstream now. */
  next(): Promise<IteratorResult<Buffer, undefined>> {
    return this.#released ? Promise.resolve(DONE) : this.#read();
  }

  /** Requester side: stops reading (a `for await` that breaks or throws calls this). */
  return(): Promise<IteratorResult<Buffer, undefined>> {
    this.release();
    return Promise.resolve(DONE);
  }

  /** Requester side: lets go; the tee reads the rest for the store. Safe to call more than once. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    if (!this.#finished) void this.#drain();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  #read(): Promise<IteratorResult<Buffer, undefined>> {
    return this.#source.next().then(
      (result) => {
        if (result.done === true) this.#end();
        else this.#take(result.value);
        return result.done === true ? DONE : result;
      },
      (error: unknown) => {
        this.#finished = true;
        this.#fail(error);
        throw error;
      },
    );
  }

  async #drain(): Promise<void> {
    try {
      while (!(await this.#read()).done);
    } catch {
      // `kept` carries the error to the store's side; nobody reads this side any more.
    }
  }

  #take(chunk: Buffer): void {
    if (this.#limit === 0) return;
    this.#size += chunk.length;
    if (this.#size <= this.#limit) this.#chunks.push(chunk);
    else this.#chunks.length = 0;
  }

  #end(): void {
    this.#finished = true;
    this.#keep(this.#limit > 0 && this.#size <= this.#limit ? Buffer.concat(this.#chunks, this.#size) : undefined);
    this.#chunks = [];
  }
}
