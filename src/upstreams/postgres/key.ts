/**
 * Store keys of Postgres entries. Every key starts with the session's fingerprint (listener,
 * database, user and settings, see session.ts); then comes what the client sent: a simple Query's
 * SQL text, or an extended batch's shape, SQL text and Bind tail (parameter formats, values and
 * result formats), as the response depends on each of them. NUL separates parts: it cannot occur
 * in a SQL text (protocol strings are NUL-terminated).
 */

/** The key of a simple Query (`Q`). */
export function queryKey(fingerprint: string, sql: string): string {
  return `${fingerprint}Q\u0000${sql}`;
}

/** The key of an extended batch: `shape` is P?S?BD?E, `bindTail` the Bind's bytes after the statement name. */
export function batchKey(fingerprint: string, shape: string, sql: string, bindTail: string): string {
  return `${fingerprint}${shape}\u0000${sql}\u0000${bindTail}`;
}
