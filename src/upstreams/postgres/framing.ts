/** Splits a byte stream into protocol messages by their headers alone, decoding nothing. */
import { MAX_MESSAGE_BYTES } from './codes.js';

/** One message: its type byte (0 for untyped startup messages) and its whole bytes, header included. */
export interface Frame {
  readonly code: number;
  readonly bytes: Buffer;
  /**
   * Set when `bytes` is one part of a message let go as it arrives (`FrameSplitter.release`):
   * `first` holds its header, the `more` parts follow in order, and nothing comes between them.
   */
  readonly part?: 'first' | 'more';
}

/** Thrown for a length that cannot be a message; the connection gets 08P01 and closes. */
export class FramingError extends Error {
  override readonly name = 'FramingError';
}

/**
 * Splits a byte stream into messages by their headers alone: a type byte and an Int32 length
 * that counts itself (or, before startup completes, just the length). Nothing is decoded, so
 * messages sidecache does not understand pass through byte for byte.
 *
 * A message that spans chunks is kept as the list of its chunks and joined once, when its last
 * byte has come: each byte is copied at most once however many chunks it came in (re-copying
 * the partial message on every chunk would make a 64 MiB Bind cost quadratic time). Messages
 * within one chunk are slices of it, not copied at all.
 */
export class FrameSplitter {
  /** The bytes of a message not yet complete (and of what follows it), in the order they came. */
  #pending: Buffer[] = [];
  #held = 0;
  /** The whole length of the pending message, header included, once its header is in; else 0. */
  #needed = 0;
  /** Bytes still to come of a message let go in parts, and its type. */
  #rest = 0;
  #restCode = 0;
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
    return this.#held;
  }

  /**
   * Appends `chunk` and returns every message now complete; a partial one is kept. While a
   * message let go by `release` is still coming, its next part comes first.
   */
  push(chunk: Buffer): Frame[] {
    if (this.#rest > 0) return this.#continue(chunk);
    if (this.#held === 0) return this.#split(chunk);
    if (chunk.length > 0) {
      this.#pending.push(chunk);
      this.#held += chunk.length;
    }
    if (this.#needed === 0) {
      if (this.#held < this.#header) return [];
      this.#needed = this.#total(readHeadLength(this.#pending, this.#header));
    }
    if (this.#held < this.#needed) return [];
    // The message is whole: one join (its bytes, and at most the rest of the last chunk).
    const data = this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending, this.#held);
    this.#pending = [];
    this.#held = 0;
    this.#needed = 0;
    return this.#split(data);
  }

  /**
   * Lets the partial message held go in parts when its header is in and `may` agrees (given its
   * type, its whole length and the first chunk held of it, header included): the bytes held now,
   * and every later byte of it as it comes (`push`), so a message nobody needs whole (a large
   * DataRow on its way to the client) is neither held nor joined.
   */
  release(may: (code: number, length: number, head: Buffer) => boolean): Frame[] {
    if (!this.#typed || this.#needed === 0 || this.#held >= this.#needed) return [];
    const head = this.#pending[0]!;
    const code = head[0]!;
    if (!may(code, this.#needed, head)) return [];
    const parts = this.#pending.map((bytes, i): Frame => ({ code, bytes, part: i === 0 ? 'first' : 'more' }));
    this.#rest = this.#needed - this.#held;
    this.#restCode = code;
    this.#pending = [];
    this.#held = 0;
    this.#needed = 0;
    return parts;
  }

  /** The next part of the message being let go, then the messages after it. */
  #continue(chunk: Buffer): Frame[] {
    if (chunk.length === 0) return [];
    const take = Math.min(this.#rest, chunk.length);
    this.#rest -= take;
    const part: Frame = { code: this.#restCode, bytes: chunk.subarray(0, take), part: 'more' };
    return take === chunk.length ? [part] : [part, ...this.#split(chunk.subarray(take))];
  }

  get #header(): number {
    return this.#typed ? 5 : 4;
  }

  /** The whole length of a message whose Int32 length field says `length`; throws when no message can have it. */
  #total(length: number): number {
    if (length < 4 || length > this.#limit) throw new FramingError(`invalid message length ${length}`);
    return length + this.#header - 4;
  }

  /** The messages complete in `data` (nothing held before it); the rest is kept. */
  #split(data: Buffer): Frame[] {
    const frames: Frame[] = [];
    let offset = 0;
    for (;;) {
      const header = this.#header;
      if (data.length - offset < header) break;
      const total = this.#total(data.readInt32BE(offset + header - 4));
      if (data.length - offset < total) {
        this.#needed = total;
        break;
      }
      frames.push({ code: this.#typed ? data[offset]! : 0, bytes: data.subarray(offset, offset + total) });
      offset += total;
      // An untyped message changes what follows (TLS, or typed messages): the caller decides
      // before the rest is split, by pushing an empty chunk.
      if (!this.#typed) break;
    }
    if (offset < data.length) {
      this.#pending = [data.subarray(offset)];
      this.#held = data.length - offset;
    }
    return frames;
  }
}

/** The Int32 that ends a header of `header` bytes, read across the chunks it may straddle. */
function readHeadLength(chunks: readonly Buffer[], header: number): number {
  const head = Buffer.alloc(header);
  let at = 0;
  for (const chunk of chunks) {
    at += chunk.copy(head, at, 0, Math.min(chunk.length, header - at));
    if (at === header) break;
  }
  return head.readInt32BE(header - 4);
}
