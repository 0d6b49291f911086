/** Field specs the schema files share: addresses, URLs, names; and the listen-address reader the servers use too. */
import { redactUrl } from '../redact.js';
import { parsePgUrl, PgUrlError } from './pg-url.js';
import { pattern, refine, required, string } from './spec.js';

/** `host:port`, `[v6]:port`, or `:port` (every interface). Port 0 asks the OS for a free one. */
export interface ListenAddress {
  host: string;
  port: number;
}

const LISTEN = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]*)):(\d{1,5})$/;

export function parseListen(text: string): ListenAddress | undefined {
  const match = LISTEN.exec(text);
  if (match === null) return undefined;
  const port = Number(match[3]);
  if (port > 65_535) return undefined;
  const host = match[1] ?? match[2] ?? '';
  return { host: host === '' ? '0.0.0.0' : host, port };
}

/** 127.0.0.0/8, ::1 and localhost: reachable from this host only. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/** A URL of one of `protocols` (`"http:"`), refused with `example` as the expected shape. */
export function url(protocols: readonly string[], example: string) {
  return refine(
    string,
    `a URL like "${example}"`,
    (v) => {
      try {
        return protocols.includes(new URL(v).protocol) ? undefined : `scheme must be ${protocols.join(' or ')}`;
      } catch {
        // new URL throws on anything unparsable; the message below says what was expected.
        return '';
      }
    },
    shownUrl,
  );
}

/** A PostgreSQL connection string as sidecache will read it (pg-connection-string), sslmode included. */
export function pgUrl(example: string) {
  return refine(
    string,
    `a URL like "${example}"`,
    (v) => {
      try {
        parsePgUrl(v);
        return undefined;
      } catch (err) {
        if (err instanceof PgUrlError) return err.message;
        throw err;
      }
    },
    shownUrl,
  );
}

/** A refused URL in an error message: a password in it must not reach logs or terminals. */
function shownUrl(value: string): string {
  return JSON.stringify(redactUrl(value));
}

export const listen = refine(string, 'an address like "127.0.0.1:8080"', (v) => (parseListen(v) ? undefined : ''));
export const name = pattern(/^[A-Za-z0-9_.-]{1,64}$/, 'a name of letters, digits, "_", "." or "-"');
export const tag = pattern(/^\S+$/, 'a tag without spaces');
export const tableName = pattern(/^\S+$/, 'a table name');
export const pathGlob = pattern(/^\//, 'a path glob starting with "/"');
export const channel = pattern(/^[A-Za-z_][A-Za-z0-9_$]{0,62}$/, 'a channel name (letters, digits, "_")');
export const headerName = pattern(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'an HTTP header name');

/** Keys every listener has, whatever its protocol. */
export const listenerIdentity = { name: required(name), listen: required(listen) };
