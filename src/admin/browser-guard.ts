/**
 * Admin writes a web page could make a browser send. A page on any site can POST to
 * `http://127.0.0.1:9090/invalidate` (a "simple" cross-site request: `text/plain`, no preflight),
 * or rebind its own name to the admin's address (DNS rebinding) and then read and write as if it
 * were same-origin. A browser cannot send `application/json` cross-site without a CORS preflight
 * (which the admin never answers), always sends `Origin` on a cross-site POST, and sends the
 * page's name as `Host` after a rebinding. Without `admin.token`, those three are checked on every
 * write (and `Host`/`Origin` on guarded reads); with a token, a browser cannot send the token, and
 * only the content type is checked.
 */
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';

/** Why a write is refused: the status and a one-line reason; undefined when it may proceed. */
export interface Refusal {
  status: 403 | 415;
  error: string;
}

/** Host names a browser on this machine may use for the admin besides IP literals. */
const LOOPBACK_NAMES = new Set(['localhost']);

/**
 * Checks a request a browser could be made to send: a write (`POST`) needs
 * `Content-Type: application/json`; without a token, a write or a guarded `GET` (one that makes
 * sidecache work upstream) needs a `Host` that is an IP literal, `localhost` or the name the admin
 * listens on, and an `Origin` (when sent) that names the same authority.
 */
export function refuseBrowserRequest(req: IncomingMessage, options: { write: boolean; tokenSet: boolean; listenHost: string }): Refusal | undefined {
  if (options.write && !isJson(req.headers['content-type'])) {
    return { status: 415, error: `expected Content-Type: application/json, got ${JSON.stringify(req.headers['content-type'] ?? '')}` };
  }
  if (options.tokenSet) return undefined;
  const host = req.headers.host;
  if (host !== undefined && !isOwnHostName(host, options.listenHost)) {
    return { status: 403, error: `Host ${JSON.stringify(host)} is not an address of this admin server (set admin.token, or use an IP address or localhost)` };
  }
  const origin = req.headers.origin;
  if (origin !== undefined && (host === undefined || !sameAuthority(origin, host))) {
    return { status: 403, error: `Origin ${JSON.stringify(origin)} is not this admin server` };
  }
  return undefined;
}

/** RFC 9110 §8.3.1: the media type, without parameters, compared without case. */
function isJson(value: string | undefined): boolean {
  return value !== undefined && value.split(';')[0]!.trim().toLowerCase() === 'application/json';
}

/** An IP literal cannot be rebound; a name can, unless it is loopback's own or the one configured. */
function isOwnHostName(host: string, listenHost: string): boolean {
  const hostname = hostnameOf(host);
  if (hostname === undefined) return false;
  const bare = hostname.replace(/^\[|\]$/g, '');
  return isIP(bare) !== 0 || LOOPBACK_NAMES.has(hostname) || hostname === listenHost.toLowerCase();
}

function sameAuthority(origin: string, host: string): boolean {
  try {
    const url = new URL(origin);
    return url.protocol === 'http:' && url.host === new URL(`http://${host}`).host;
  } catch {
    // `null` (an opaque origin) or garbage: not this server.
    return false;
  }
}

function hostnameOf(host: string): string | undefined {
  try {
    const url = new URL(`http://${host}`);
    return url.pathname === '/' && url.username === '' ? url.hostname : undefined;
  } catch {
    // Not a host[:port] at all.
    return undefined;
  }
}
