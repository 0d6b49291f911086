/**
 * The access log's line (`log.access: true`) and the response classes both protocols count. A line
 * names what was asked and how it was answered, never what it carried: no query string, body,
 * field value, SQL literal or bind value.
 */
import type { Protocol, RequestResult } from '../events.js';

/** One answered request. HTTP lines have method, path and status; PostgreSQL lines database, user, command and sqlstate. */
export interface AccessLine {
  protocol: Protocol;
  listener: string;
  /** The gateway route that answered (`http[].routes`), on gateway listeners only. */
  route?: string;
  result: RequestResult;
  durationMs: number;
  method?: string;
  /** The path without its query. */
  path?: string;
  status?: number;
  database?: string;
  user?: string;
  /** The first word of the statement (`SELECT`), never its text. */
  command?: string;
  /** The upstream's SQLSTATE (`00000`: success); absent for an answer from the store. */
  sqlstate?: string;
}

/** Writes one access line. */
export type AccessLog = (line: AccessLine) => void;

/** `2xx`… for an HTTP status (RFC 9110 §15): the `class` label of `sidecache_upstream_responses_total`. */
export function statusClass(status: number): string {
  return status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : 'other';
}

/**
 * The SQLSTATE class (its first two characters, PostgreSQL docs Appendix A): `00` success, `42`
 * syntax or access rule, … A code that is not five digits or capitals is `other`, so a server cannot
 * make the label set grow.
 */
export function sqlstateClass(code: string): string {
  return /^[0-9A-Z]{5}$/.test(code) ? code.slice(0, 2) : 'other';
}

/** The first keyword of a SQL text, upper-cased (letters only): what the statement is, not what it says. */
export function commandOf(sql: string | undefined): string | undefined {
  if (sql === undefined) return undefined;
  const word = /^(?:\s|--[^\n]*\n|\/\*[^]*?\*\/)*([A-Za-z]+)/.exec(sql);
  return word === null ? undefined : word[1]!.toUpperCase();
}

/** The path of a target, without its query. */
export function pathWithoutQuery(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}
