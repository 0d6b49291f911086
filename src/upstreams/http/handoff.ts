/**
 * Hands the chunks of one upstream body from the loader that reads them to the one requester that
 * relays them, at the requester's pace (so a slow client slows the upstream read, as backpressure
 * should), until the requester lets go; from then on the loader reads on without waiting.
 */

type Outcome = IteratorResult<Buffer, undefined> | { readonly error: unknown };

interface Reader {
  resolve(result: IteratorResult<Buffer, undefined>): void;
  reject(error: unknown): void;
}

const DONE: IteratorReturnResult<undefined> = { value: undefined, done: true };

/** One body's way from loader to requester: `give`/`end`/`fail` on the loader's side, `for await` on the requester's. */
export class BodyHandoff implements AsyncIterableIterator<Buffer, undefined> {
  /** What the loader handed over before the requester asked for it. */
  #ready: Outcome | undefined;
  /** The requester, waiting for the next chunk. */
  #reader: Reader | undefined;
  /** The loader, waiting until the requester has taken the chunk it handed over, and is done with it. */
  #loader: (() => void) | undefined;
  /** Resumes the loader once the requester is done with the chunk it holds. */
  #held: (() => void) | undefined;
  #released = false;

  /**
   * Loader side: hands `chunk` over. The promise settles when the requester asks for the next
   * chunk, or lets go; undefined when it has already let go.
   */
  give(chunk: Buffer): Promise<void> | undefined {
    if (this.#released) return undefined;
    const resumed = new Promise<void>((resolve) => {
      this.#loader = resolve;
    });
    this.#settle({ value: chunk, done: false });
    return resumed;
  }

  /** Loader side: the body is complete. */
  end(): void {
    this.#settle(DONE);
  }

  /** Loader side: reading the body failed; the requester's next read throws `error`. */
  fail(error: unknown): void {
    this.#settle({ error });
  }

  /** Requester side: the next chunk, once the loader has it. Asking means the last one is dealt with. */
  next(): Promise<IteratorResult<Buffer, undefined>> {
    if (this.#released) return Promise.resolve(DONE);
    this.#resume();
    const ready = this.#ready;
    if (ready === undefined) {
      return new Promise((resolve, reject) => {
        this.#reader = { resolve, reject };
      });
    }
    this.#ready = undefined;
    if ('error' in ready) return Promise.reject(ready.error);
    this.#hold();
    return Promise.resolve(ready);
  }

  /** Requester side: stops reading (a `for await` that breaks or throws calls this). */
  return(): Promise<IteratorResult<Buffer, undefined>> {
    this.release();
    return Promise.resolve(DONE);
  }

  /** Requester side: lets go; the loader reads the rest without waiting. Safe to call more than once. */
  release(): void {
    this.#released = true;
    this.#ready = undefined;
    // The loader may wait on a chunk the requester holds, or on one it never took.
    const waiting = [this.#held, this.#loader];
    this.#held = undefined;
    this.#loader = undefined;
    for (const resume of waiting) resume?.();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  #settle(outcome: Outcome): void {
    if (this.#released) return;
    const reader = this.#reader;
    if (reader === undefined) {
      this.#ready = outcome;
      return;
    }
    this.#reader = undefined;
    if ('error' in outcome) reader.reject(outcome.error);
    else {
      this.#hold();
      reader.resolve(outcome);
    }
  }

  /** The requester has taken the chunk the loader waits on (when it waits). */
  #hold(): void {
    this.#held = this.#loader;
    this.#loader = undefined;
  }

  #resume(): void {
    const held = this.#held;
    this.#held = undefined;
    held?.();
  }
}
