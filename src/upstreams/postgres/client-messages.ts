/**
 * Where each client message of a ready session goes: a Query to the read-through, extended-protocol
 * messages to the batch until Sync, and what the cache has no part in straight upstream.
 */
import type { Batches } from './batch.js';
import { Frontend } from './codes.js';
import type { Frame } from './framing.js';
import { decodeQuery } from './messages.js';
import type { ReadThrough } from './read-through.js';
import type { UpstreamSlot } from './response-queue.js';
import type { Session } from './session.js';

/** What one connection's messages are handed to, once its StartupMessage has come. */
export interface MessageTargets {
  readonly session: Session;
  readonly batches: Batches;
  readonly readThrough: ReadThrough;
  /** Sends a request the cache has no part in, with a slot of its own (it may change the session). */
  readonly forward: (frame: Frame, executed: string[]) => UpstreamSlot;
  /** Writes bytes upstream as they are. */
  readonly send: (bytes: Buffer) => void;
}

/** Hands one client message on; a promise when the connection must wait (on another session's fill) before the next. */
export function handleClientMessage(frame: Frame, to: MessageTargets): Promise<void> | undefined {
  const { batches, readThrough, session } = to;
  // The rest of a message let go as it arrives (connection.ts): its first part said where it goes.
  if (frame.part === 'more') {
    to.send(frame.bytes);
    return undefined;
  }
  if (frame.part === 'first' && frame.code === Frontend.Bind) {
    batches.pass(frame);
    return undefined;
  }
  switch (frame.code) {
    case Frontend.Query:
      if (batches.pending) {
        // A Query inside an unfinished extended batch: the batch's response and this one's share
        // a ReadyForQuery, so neither can be told apart for the cache. Both pass through, and as
        // whose error is whose cannot be told either, the session is tainted. The server skips
        // the Query when the batch fails first (response-queue.ts drops its slot then).
        batches.release();
        session.simpleQuery();
        const slot = to.forward(frame, [decodeQuery(frame.bytes)]);
        slot.unknown = true;
        slot.skippable = true;
        return undefined;
      }
      session.simpleQuery();
      return readThrough.query(frame);
    case Frontend.Parse:
    case Frontend.Bind:
    case Frontend.Describe:
    case Frontend.Execute:
    case Frontend.Close:
    case Frontend.Flush:
      batches.add(frame);
      return undefined;
    case Frontend.Sync: {
      const held = batches.end(frame);
      return held === undefined ? undefined : readThrough.batch(held, frame);
    }
    case Frontend.FunctionCall:
      // A function call sidecache cannot see into (it may call set_config): the session is tainted.
      batches.release();
      to.forward(frame, []).unknown = true;
      return undefined;
    default:
      // CopyData/CopyDone/CopyFail, Terminate and anything unknown pass through as they are.
      batches.release();
      to.send(frame.bytes);
      return undefined;
  }
}
