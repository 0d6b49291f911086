/** Splits a byte stream into protocol messages by their headers alone, decoding nothing. */
import { MAX_MESSAGE_BYTES } from './codes.js';

/** One message: its type byte (0 for untyped startup messages) and its whole bytes, header included. */
export interface Frame {
  readonly code: number;
  readonly bytes: Buffer;
}

/** Thrown for a length that cannot be a message; the connection gets 08P01 and closes. */
export class FramingError extends Error {
  override readonly name = 'FramingError';
}

/**
 * Splits a byte stream into messages by their headers alone: a type byte and an Int32 length
 * that counts itself (or, before startup completes, just the length). Nothing is decoded, so
 * messages sidecache does not understand pass through byte for byte.
 */
export class FrameSplitter {
  #buffer: Buffer = Buffer.alloc(0);
  #typed: boolean;
  readonly #limit: number;

  constructor(options: { typed: boolean; limit?: number }) {
    this.#typed = options.typed;
    this.#limit = options.limit ?? MAX_MESSAGE_BYTES;
  }

  /** Untyped messages come first from a client (startup); call once they are done. */
  setTyped(): void {
    this.#typed = true;
  }

  /** Bytes held of a message not yet complete. */
  get buffered(): number {
    return this.#buffer.length;
  }

  /** Appends `chunk` and returns every message now complete; a partial one is kept. */
  push(chunk: Buffer): Frame[] {
    const data = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    const frames: Frame[] = [];
    let offset = 0;
    for (;;) {
      const header = this.#typed ? 5 : 4;
      if (data.length - offset < header) break;
      const length = data.readInt32BE(offset + header - 4);
      if (length < 4 || length > this.#limit) throw new FramingError(`invalid message length ${length}`);
      const total = length + header - 4;
      if (data.length - offset < total) break;
      frames.push({ code: this.#typed ? data[offset]! : 0, bytes: data.subarray(offset, offset + total) });
      offset += total;
      // An untyped message changes what follows (TLS, or typed messages): the caller decides
      // before the rest is split, by pushing an empty chunk.
      if (!this.#typed) break;
    }
    this.#buffer = offset === data.length ? Buffer.alloc(0) : data.subarray(offset);
    return frames;
  }
}
