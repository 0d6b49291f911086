/**
 * The order of one connection's answers: every request that reaches the upstream owns a slot that
 * ends at its ReadyForQuery, and an answer from the store waits behind the slots before it, so
 * responses leave in the order their requests came whatever mix of hits and misses a pipeline
 * holds (https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-PIPELINING).
 * Knows nothing about sockets: it writes through the function it is given.
 */
import type { Millis } from '../../units.js';
import type { RequestResult } from '../../events.js';
import type { Capture } from './capture.js';
import { Backend } from './codes.js';
import type { Frame } from './framing.js';
import { decodeErrorFields, decodeReadyStatus } from './messages.js';

/** A request that went upstream: it ends at its ReadyForQuery. */
export interface UpstreamSlot {
  kind: 'up';
  /** SQL texts executed, whose effects (writes, SET, …) apply when the slot ends. */
  executed: string[];
  /** May change the transaction status or session: no cache use until it ends. */
  uncertain: boolean;
  /** It ran something sidecache cannot see (a FunctionCall, an Execute of a portal it does not know). */
  unknown: boolean;
  /** The server answered an ErrorResponse. */
  errored: boolean;
  /** The SQLSTATE of the first ErrorResponse, for the access log and the response classes. */
  sqlstate: string | undefined;
  /** Replies still due to the extended messages forwarded in it (one completion message each). */
  replies: number;
  /** A Query sent inside an unfinished extended batch: the server discards it when the batch fails first. */
  skippable: boolean;
  /** One per Parse of the client's forwarded in it: a ParseComplete drops the first, and those left at its end (the Parse failed or was skipped) are called. */
  parses: (() => void)[];
  /** The statements of its Describe messages, in order: each RowDescription or NoData answers the first. */
  describes: { description: Buffer | undefined }[];
  /** ParseCompletes of Parses sidecache sent on its own, which the client must not see. */
  swallowParse: number;
  capture: Capture | undefined;
  /** Called once with the captured response (undefined when not storable, or on close). */
  onEnd: ((stored: Buffer | undefined) => void) | undefined;
  started: Millis;
  result: RequestResult | undefined;
}

/** Messages that complete one extended-protocol message (Describe completes with RowDescription or NoData). */
const COMPLETIONS = new Set<number>([
  Backend.ParseComplete,
  Backend.BindComplete,
  Backend.CloseComplete,
  Backend.RowDescription,
  Backend.NoData,
  Backend.CommandComplete,
  Backend.EmptyQueryResponse,
  Backend.PortalSuspended,
]);

/** A stored answer waiting for the slots before it. */
interface CachedSlot {
  kind: 'cached';
  bytes: Buffer;
}

/** A question of sidecache's own on the session (the in-band catalog): its frames never reach the client unless it says so. */
export interface InternalSlot {
  kind: 'internal';
  /** One upstream frame of its reply; true at the end of the reply. */
  frame(frame: Frame): boolean;
  /** The connection closed before the reply ended. */
  close(): void;
}

export interface ResponseQueueOptions {
  /** Writes bytes to the client. */
  write(bytes: Buffer): void;
  now(): Millis;
  /**
   * An upstream slot ended at a ReadyForQuery with this transaction status, before its `onEnd` and
   * before the ReadyForQuery reaches the client. A promise returned holds that ReadyForQuery, and
   * every byte after it, until it settles (the publication of a write's invalidation).
   */
  ended(slot: UpstreamSlot, status: number): Promise<void> | void;
  /**
   * Told when the queue begins holding bytes (true) and when it has written them (false): the
   * writer keeps what it was given just before the hold (the CommandComplete of the write whose
   * ReadyForQuery is held) and sends it with the held bytes, so the client gets one answer in one
   * write and is woken once, not twice.
   */
  holding?(on: boolean): void;
}

export class ResponseQueue {
  readonly #slots: (UpstreamSlot | CachedSlot | InternalSlot)[] = [];
  readonly #options: ResponseQueueOptions;
  /** Bytes for the client held behind a publication, in order; undefined when nothing is held. */
  #held: Buffer[] | undefined;
  /** What the held bytes wait for (every hold begun so far). */
  #holding: Promise<unknown> | undefined;

  constructor(options: ResponseQueueOptions) {
    this.#options = options;
  }

  /** Opens the slot of a request about to be sent upstream. */
  open(executed: string[], uncertain: boolean, result?: RequestResult, capture?: Capture): UpstreamSlot {
    const slot: UpstreamSlot = {
      kind: 'up',
      executed,
      uncertain,
      unknown: false,
      errored: false,
      sqlstate: undefined,
      replies: 0,
      skippable: false,
      parses: [],
      describes: [],
      swallowParse: 0,
      capture,
      onEnd: undefined,
      started: this.#options.now(),
      result,
    };
    this.#slots.push(slot);
    return slot;
  }

  /** Opens the slot of sidecache's own question, about to be sent upstream. */
  openInternal(handlers: Omit<InternalSlot, 'kind'>): void {
    this.#slots.push({ kind: 'internal', ...handlers });
  }

  /** Nothing is outstanding upstream or waiting to be written. */
  get idle(): boolean {
    return this.#slots.length === 0;
  }

  /** Whether the frames coming now belong to sidecache's own question. */
  get internalAtHead(): boolean {
    return this.#slots[0]?.kind === 'internal';
  }

  /** A stored answer: written now when nothing is outstanding, else after the slots before it. */
  answer(bytes: Buffer): void {
    if (this.#slots.length === 0) this.#write(bytes);
    else this.#slots.push({ kind: 'cached', bytes });
  }

  /** Whether a request ahead may change the transaction status or session. */
  get uncertain(): boolean {
    return this.#slots.some((slot) => slot.kind === 'up' && slot.uncertain);
  }

  /** Routes one backend frame to the client on behalf of the slot at the head. */
  fromUpstream(frame: Frame): void {
    const head = this.#slots[0];
    // Nothing outstanding: an asynchronous message (notification, notice, parameter, fatal error).
    if (head?.kind === 'internal') {
      if (head.frame(frame)) {
        this.#slots.shift();
        this.#flushCached();
      }
      return;
    }
    if (head === undefined || head.kind !== 'up') return this.#write(frame.bytes);
    if (frame.code === Backend.ParseComplete && head.swallowParse > 0) {
      head.swallowParse--;
      return;
    }
    head.capture?.add(frame);
    if (frame.code === Backend.ErrorResponse) this.#error(head, frame.bytes);
    else if (COMPLETIONS.has(frame.code) && head.replies > 0) head.replies--;
    if (frame.code === Backend.ParseComplete) head.parses.shift();
    if (frame.code === Backend.RowDescription || frame.code === Backend.NoData) {
      const statement = head.describes.shift();
      // A copy: the frame is a slice of a socket chunk.
      if (statement !== undefined) statement.description = Buffer.from(frame.bytes);
    }
    if (frame.code === Backend.ReadyForQuery) return this.#end(head, decodeReadyStatus(frame.bytes), frame.bytes);
    this.#write(frame.bytes);
  }

  /**
   * An ErrorResponse. When extended messages of the slot were still due, the server now discards
   * messages up to the Sync, a Query sent in between included: its slot will get no ReadyForQuery.
   */
  #error(head: UpstreamSlot, bytes: Buffer): void {
    head.errored = true;
    head.sqlstate ??= decodeErrorFields(bytes).code;
    if (head.replies === 0) return;
    head.replies = 0;
    while (this.#slots[1]?.kind === 'up' && this.#slots[1].skippable) {
      const skipped = this.#slots.splice(1, 1)[0] as UpstreamSlot;
      head.unknown ||= skipped.unknown;
      skipped.onEnd?.(undefined);
    }
  }

  #end(slot: UpstreamSlot, status: number, readyForQuery: Buffer): void {
    this.#slots.shift();
    for (const failed of slot.parses) failed();
    const published = this.#options.ended(slot, status);
    if (published !== undefined) this.#hold(published);
    this.#write(readyForQuery);
    slot.onEnd?.(slot.capture?.result(status));
    this.#flushCached();
  }

  #flushCached(): void {
    while (this.#slots[0]?.kind === 'cached') this.#write((this.#slots.shift() as CachedSlot).bytes);
  }

  #write(bytes: Buffer): void {
    if (this.#held !== undefined) this.#held.push(bytes);
    else this.#options.write(bytes);
  }

  /**
   * Holds what goes to the client from now on until `until` (and every earlier hold) settles:
   * a client that wrote through this replica hears the write ended only once the other replicas
   * were told, so its next read through any of them is fresh.
   */
  #hold(until: Promise<void>): void {
    if (this.#held === undefined) {
      this.#held = [];
      this.#options.holding?.(true);
    }
    const holding = Promise.all([this.#holding, until]);
    this.#holding = holding;
    void holding.then(() => {
      if (this.#holding !== holding) return;
      const held = this.#held ?? [];
      this.#held = undefined;
      this.#holding = undefined;
      for (const bytes of held) this.#options.write(bytes);
      this.#options.holding?.(false);
    });
  }

  /** The connection closed: every upstream slot ends without a response. */
  close(): void {
    if (this.#held !== undefined) this.#options.holding?.(false);
    this.#held = undefined;
    this.#holding = undefined;
    for (const slot of this.#slots.splice(0)) {
      if (slot.kind === 'up') slot.onEnd?.(undefined);
      else if (slot.kind === 'internal') slot.close();
    }
  }
}
