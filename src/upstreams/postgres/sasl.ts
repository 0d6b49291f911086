/** The SASL mechanism list of AuthenticationSASL, and the one change sidecache makes to it. */
import { Backend } from './codes.js';
import type { Frame } from './framing.js';

/** AuthenticationSASL: 'R', length, int32 10, then mechanism names as C strings, ending with an empty one. */
const AUTH_SASL = 10;
const CHANNEL_BOUND = 'SCRAM-SHA-256-PLUS';

/**
 * `bytes` (an Authentication message) without the SCRAM-SHA-256-PLUS offer when it is an
 * AuthenticationSASL that makes it; any other message, or one without that offer, is returned as it is.
 * https://www.postgresql.org/docs/current/protocol-message-formats.html#PROTOCOL-MESSAGE-FORMATS-AUTHENTICATIONSASL
 */
export function withoutChannelBinding(bytes: Buffer): Buffer {
  if (bytes.length < 9 || bytes.readInt32BE(5) !== AUTH_SASL) return bytes;
  const mechanisms: string[] = [];
  for (let at = 9; at < bytes.length;) {
    const end = bytes.indexOf(0, at);
    if (end <= at) break;
    mechanisms.push(bytes.toString('utf8', at, end));
    at = end + 1;
  }
  if (!mechanisms.includes(CHANNEL_BOUND)) return bytes;
  const kept = mechanisms.filter((m) => m !== CHANNEL_BOUND);
  const body = Buffer.concat([...kept.map((m) => Buffer.from(`${m}\0`, 'utf8')), Buffer.from([0])]);
  const out = Buffer.alloc(9 + body.length);
  out[0] = bytes[0]!;
  out.writeInt32BE(8 + body.length, 1);
  out.writeInt32BE(AUTH_SASL, 5);
  body.copy(out, 9);
  return out;
}

/**
 * What the client sees of an authentication-phase frame: the frame verbatim, but for one field.
 * A server on TLS offers SCRAM-SHA-256-PLUS, bound to *its* TLS channel. A client on plain TCP
 * to sidecache cannot use it, and libpq refuses a server that offers it there as a possible
 * man in the middle; without the offer it uses SCRAM-SHA-256 and says it has no TLS ('n'),
 * which the server accepts. (A client on TLS to sidecache can bind only to sidecache's channel,
 * which the server rejects: such clients need channel_binding=disable.)
 * (https://www.postgresql.org/docs/current/sasl-authentication.html#SASL-SCRAM-SHA-256)
 */
export function authFrameForClient(frame: Frame, clientOnTls: boolean): Buffer {
  return frame.code === Backend.Authentication && !clientOnTls ? withoutChannelBinding(frame.bytes) : frame.bytes;
}
