/**
 * One catalog question asked in band, on a client's own upstream session while it is idle outside
 * a transaction: the bytes sent, and the reading of the reply, which the client never sees.
 *
 * The question leaves the session as it was. It runs in the extended protocol under a named
 * statement of its own, closed before and after (the client's unnamed statement, which a simple
 * Query would destroy, stays as it is:
 * https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-EXT-QUERY), and the
 * unnamed portal, which cannot exist outside a transaction. Everything up to the Sync is one
 * implicit transaction, so the settings it needs are set with `set_config(…, true)` and end with
 * it: search_path pinned to pg_catalog (names and operators resolve there whatever the role set),
 * its own lock and statement timeouts, no transaction timeout, NULL read as NULL in the arrays it
 * binds (array_nulls), read only. An error skips to the
 * Sync and rolls all of it back; a second Close and Sync then remove the statement, so nothing
 * stays behind whatever failed (https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-EXT-QUERY,
 * "Error handling").
 */
import pg from 'pg';
import { serialize } from 'pg-protocol';
import { Backend } from './codes.js';
import type { Frame } from './framing.js';
import { decodeDataRow, decodeErrorFields, decodeRowDescription } from './messages.js';

/** The statement name sidecache prepares on a client's session, for the length of one question. */
export const QUESTION_STATEMENT = 'sidecache catalog question';

/** How long a catalog question may take on a client's session (the client's next request waits behind it). */
const STATEMENT_TIMEOUT_MS = 5_000;
/** How long it waits for a lock (pg_get_viewdef locks the view): a lock held elsewhere must not stall the session. */
const LOCK_TIMEOUT_MS = 100;

/**
 * The transaction's own settings (https://www.postgresql.org/docs/current/functions-admin.html#FUNCTIONS-ADMIN-SET,
 * `is_local`). transaction_timeout exists from PostgreSQL 17 on; a client's short one would end the session.
 */
const SETUP = `SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true),
  pg_catalog.set_config('lock_timeout', '${LOCK_TIMEOUT_MS}', true),
  pg_catalog.set_config('statement_timeout', '${STATEMENT_TIMEOUT_MS}', true),
  CASE WHEN pg_catalog.current_setting('transaction_timeout', true) IS NOT NULL
    THEN pg_catalog.set_config('transaction_timeout', '0', true) END,
  pg_catalog.set_config('array_nulls', 'on', true),
  pg_catalog.set_config('transaction_read_only', 'on', true)`;

/** The bytes of one question: `text` with `values` bound as $1, $2, … */
export function questionBytes(text: string, values: readonly unknown[]): Buffer {
  const name = QUESTION_STATEMENT;
  const close = serialize.close({ type: 'S', name });
  return Buffer.concat([
    close,
    serialize.parse({ name, text: SETUP, types: [] }),
    serialize.bind({ portal: '', statement: name, values: [] }),
    serialize.execute({ portal: '', rows: 0 }),
    close,
    serialize.parse({ name, text, types: [] }),
    serialize.bind({ portal: '', statement: name, values: values.map(textValue) }),
    serialize.describe({ type: 'P', name: '' }),
    serialize.execute({ portal: '', rows: 0 }),
    close,
    serialize.sync(),
    // Reached even when an error skipped the first Close: the statement never outlives the question.
    close,
    serialize.sync(),
  ]);
}

/** A parameter in text format, as node-postgres would send it. */
function textValue(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (Array.isArray(value)) return arrayLiteral(value);
  return String(value);
}

/** An array in PostgreSQL's text form, every element quoted (https://www.postgresql.org/docs/current/arrays.html#ARRAYS-IO). */
function arrayLiteral(values: readonly unknown[]): string {
  const element = (v: unknown): string => (v === null || v === undefined ? 'NULL' : `"${String(v).replace(/[\\"]/g, '\\$&')}"`);
  return `{${values.map(element).join(',')}}`;
}

/** The error a question failed with: PostgreSQL's SQLSTATE as `code`, as node-postgres reports it. */
export class QuestionError extends Error {
  readonly code: string;
  constructor(message: string, code: string) {
    super(message);
    this.code = code;
  }
}

/** Reads the reply to one question: rows typed as node-postgres types them, or the server's error. */
export class QuestionReply<R> {
  #parsers: { name: string; parse: (text: string) => unknown }[] | undefined;
  readonly #rows: R[] = [];
  #error: QuestionError | undefined;
  #readies = 0;
  readonly #resolve: (rows: R[]) => void;
  readonly #reject: (err: Error) => void;

  constructor(resolve: (rows: R[]) => void, reject: (err: Error) => void) {
    this.#resolve = resolve;
    this.#reject = reject;
  }

  /** One frame of the reply; true at its end (the second ReadyForQuery), when the question is settled. */
  frame(frame: Frame): boolean {
    switch (frame.code) {
      case Backend.RowDescription:
        // Only the question is described; the setup's row comes before and is not read.
        this.#parsers = decodeRowDescription(frame.bytes).map((c) => ({ name: c.name, parse: pg.types.getTypeParser(c.type, 'text') }));
        return false;
      case Backend.DataRow:
        if (this.#parsers !== undefined) this.#rows.push(this.#row(decodeDataRow(frame.bytes)));
        return false;
      case Backend.ErrorResponse: {
        const { code, message } = decodeErrorFields(frame.bytes);
        this.#error ??= new QuestionError(message, code);
        return false;
      }
      case Backend.ReadyForQuery:
        if (++this.#readies < 2) return false;
        if (this.#error !== undefined) this.#reject(this.#error);
        else this.#resolve(this.#rows);
        return true;
      default:
        return false;
    }
  }

  #row(values: (string | null)[]): R {
    const row: Record<string, unknown> = {};
    this.#parsers!.forEach((column, i) => {
      const text = values[i] ?? null;
      row[column.name] = text === null ? null : column.parse(text);
    });
    return row as R;
  }
}
