/**
 * Which messages go on in parts as they arrive (`FrameSplitter.release`) rather than held until
 * their last byte: those the listener never needs whole
 * (https://www.postgresql.org/docs/current/protocol-message-formats.html).
 */
import { Backend, Frontend } from './codes.js';
import { hasBindNames } from './messages.js';

/** Messages from this size on may go on as they arrive: below it, one socket read holds them whole. */
const STREAM_FROM = 64 * 1024;

/**
 * Backend messages the listener never decodes on a client's behalf: a large DataRow or CopyData
 * (a sidecache question's own reply, which is decoded, is never let go: connection.ts asks only
 * when a client's request is at the head of the queue).
 */
export function streamsToClient(code: number, length: number): boolean {
  return length >= STREAM_FROM && (code === Backend.DataRow || code === Backend.CopyData);
}

/**
 * Client messages that go upstream as they arrive: a large CopyData, and a Bind longer than
 * `maxEntryBytes`: its parameters are part of the key, which counts toward the entry, so no answer
 * to it can be stored and its batch goes upstream at once (`Batches.pass`). The Bind's names must
 * be in its first part, for the statements and portals kept in step (batch.ts).
 */
export function streamsUpstream(maxEntryBytes: number): (code: number, length: number, head: Buffer) => boolean {
  return (code, length, head) => {
    if (length < STREAM_FROM) return false;
    if (code === Frontend.CopyData) return true;
    return code === Frontend.Bind && length > maxEntryBytes && hasBindNames(head);
  };
}
