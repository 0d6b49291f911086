import { Frontend, Target } from './codes.js';
import type { Frame } from './framing.js';
import { decodeBind, decodeExecute, decodeParse, decodeTarget } from './messages.js';


/** An extended-protocol batch up to its Sync, held back while it may still be a cache hit. */
export interface Batch<Slot> {
  frames: Frame[];
  /** P, S (describe statement), B, D (describe portal), E, in the order seen. */
  shape: string;
  parse: { name: string; sql: string; bytes: Buffer } | undefined;
  sql: string | undefined;
  /** Parameter formats, values and result formats: the Bind's tail, part of the key. */
  bindTail: string;
  /** Set once the batch goes upstream. */
  slot: Slot | undefined;
}

export function newBatch<Slot>(): Batch<Slot> {
  return { frames: [], shape: '', parse: undefined, sql: undefined, bindTail: '', slot: undefined };
}

/**
 * Adds `frame` to the batch if the batch stays a candidate for the cache: Parse? DescribeS? Bind
 * DescribeP? Execute, with the unnamed portal and no row limit
 * (https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-EXT-QUERY).
 * `known` gives the SQL of a statement the session prepared earlier.
 */
export function extendBatch<Slot>(batch: Batch<Slot>, frame: Frame, known: (name: string) => string | undefined): boolean {
  const { shape } = batch;
  const statementSql = (name: string): string | undefined => (batch.parse !== undefined && batch.parse.name === name ? batch.parse.sql : known(name));
  switch (frame.code) {
    case Frontend.Parse: {
      if (shape !== '') return false;
      batch.parse = { ...decodeParse(frame.bytes), bytes: frame.bytes };
      batch.shape = 'P';
      return true;
    }
    case Frontend.Describe: {
      const { kind, name } = decodeTarget(frame.bytes);
      if (kind === Target.Statement && (shape === 'P' || shape === '') && statementSql(name) !== undefined) {
        batch.shape += 'S';
        return true;
      }
      if (kind === Target.Portal && name === '' && shape.endsWith('B')) {
        batch.shape += 'D';
        return true;
      }
      return false;
    }
    case Frontend.Bind: {
      if (!['', 'P', 'PS', 'S'].includes(shape)) return false;
      const bind = decodeBind(frame.bytes);
      const sql = statementSql(bind.statement);
      if (bind.portal !== '' || sql === undefined) return false;
      batch.sql = sql;
      batch.bindTail = frame.bytes.toString('latin1', bind.restAt);
      batch.shape += 'B';
      return true;
    }
    case Frontend.Execute: {
      const { portal, maxRows } = decodeExecute(frame.bytes);
      if (portal !== '' || maxRows !== 0 || !(shape.endsWith('B') || shape.endsWith('D'))) return false;
      batch.shape += 'E';
      return true;
    }
    default:
      return false;
  }
}
