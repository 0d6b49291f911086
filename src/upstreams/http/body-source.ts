/**
 * How a SharedBody (`body-tee.ts`) reads its upstream body: chunks pushed by undici's dispatch
 * handler (a fill's), a stream by its events, which cost less than its async iterator, any other
 * async iterable by its iterator.
 * Each is read at its own pace while the body may be stored, else one chunk at a time as the
 * readers ask.
 */
import { Readable } from 'node:stream';

/** The SharedBody's side of the reading. */
export interface SourceSink {
  /** Nobody reads and nothing is kept: what comes is for nobody. */
  cancelled(): boolean;
  /** The body may still be stored: it is read at the upstream's pace. */
  keeping(): boolean;
  /** The body ended or its read failed. */
  finished(): boolean;
  push(chunk: Buffer): void;
  end(): void;
  fail(error: unknown): void;
  /** Calls `resume` once every reader has taken all that was read, or the body is cancelled. */
  awaitDemand(resume: () => void): void;
}

/** The SharedBody side of a sink, as functions of the body, shared by every body. */
export type SinkOps<B> = { [K in keyof SourceSink]: (body: B, ...args: Parameters<SourceSink[K]>) => ReturnType<SourceSink[K]> };

/** A SourceSink of one body: the body and the shared functions, rather than seven closures per body. */
export class Sink<B> implements SourceSink {
  readonly #body: B;
  readonly #ops: SinkOps<B>;

  constructor(body: B, ops: SinkOps<B>) {
    this.#body = body;
    this.#ops = ops;
  }

  cancelled(): boolean {
    return this.#ops.cancelled(this.#body);
  }

  keeping(): boolean {
    return this.#ops.keeping(this.#body);
  }

  finished(): boolean {
    return this.#ops.finished(this.#body);
  }

  push(chunk: Buffer): void {
    this.#ops.push(this.#body, chunk);
  }

  end(): void {
    this.#ops.end(this.#body);
  }

  fail(error: unknown): void {
    this.#ops.fail(this.#body, error);
  }

  awaitDemand(resume: () => void): void {
    this.#ops.awaitDemand(this.#body, resume);
  }
}

/** A body that pushes its chunks to the sink it is attached to (`dispatched-body.ts`). */
export interface PushSource {
  /** Starts delivering to `sink`; returns what ends the upstream request at once. */
  attach(sink: SourceSink): () => void;
}

/** What a SharedBody reads: pushed chunks, a stream, or any async iterable. */
export type BodySource = PushSource | (AsyncIterable<Buffer> & Partial<Destroyable>);

/** A stream (undici's response body): destroyed to end the upstream request at once. */
export interface Destroyable {
  destroy(): unknown;
  on(event: 'error', listener: (error: unknown) => void): unknown;
}

function isDestroyable(source: object): source is Destroyable {
  return typeof (source as Partial<Destroyable>).destroy === 'function' && typeof (source as Partial<Destroyable>).on === 'function';
}

/** Starts reading `source` into `sink`; returns what ends the upstream request at once. */
export function readSource(source: BodySource, sink: SourceSink): () => void {
  if ('attach' in source) return source.attach(sink);
  let iterator: AsyncIterator<Buffer> | undefined;
  if (source instanceof Readable) flow(source, sink);
  else void pump((iterator = source[Symbol.asyncIterator]()), sink);
  // A stream is destroyed: an iterator's return() would wait behind the read in progress.
  if (isDestroyable(source))
    return () => {
      source.on('error', () => {
        // The error of a body destroyed because nobody reads it: expected, and nobody's.
      });
      source.destroy();
    };
  return () =>
    void iterator?.return?.().catch(() => {
      // Ending an upstream body nobody reads: its own error says nothing to anyone.
    });
}

function flow(stream: Readable, sink: SourceSink): void {
  const wait = (): void => {
    stream.pause();
    sink.awaitDemand(() => stream.resume());
  };
  stream.on('data', (chunk: Buffer) => {
    // Cancelled meanwhile: what comes is for nobody.
    if (sink.cancelled()) return;
    sink.push(chunk);
    if (!sink.keeping() && !sink.cancelled()) wait();
  });
  stream.on('end', () => {
    if (!sink.cancelled()) sink.end();
  });
  stream.on('error', (error: unknown) => {
    if (!sink.cancelled()) sink.fail(error);
  });
  // Destroyed by someone else without an error: the body will not end (the iterator would throw so).
  stream.on('close', () => {
    if (!sink.cancelled() && !sink.finished()) sink.fail(Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
  });
  if (sink.keeping()) stream.resume();
  else wait();
}

async function pump(source: AsyncIterator<Buffer>, sink: SourceSink): Promise<void> {
  for (;;) {
    if (!sink.keeping()) {
      await new Promise<void>((resolve) => sink.awaitDemand(resolve));
      if (sink.cancelled()) return;
    }
    let result: IteratorResult<Buffer>;
    try {
      result = await source.next();
    } catch (error) {
      if (!sink.cancelled()) sink.fail(error);
      return;
    }
    // Cancelled while the read was in progress: what came is for nobody.
    if (sink.cancelled()) return;
    if (result.done === true) return sink.end();
    sink.push(result.value);
  }
}
