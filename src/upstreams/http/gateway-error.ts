/**
 * The answers sidecache makes itself when the upstream fails (502/504 with a Cache-Status detail),
 * and how an upstream error is classified and logged.
 */
import type { ServerResponse } from 'node:http';
import { type ForwardReason, formatCacheStatus } from './cache-status.js';

/**
 * The answer a gateway makes itself when the upstream fails (RFC 9110 §15.6.3 502, §15.6.5 504):
 * a status, a Cache-Status `detail` token and a one-line reason.
 */
export interface GatewayFailure {
  status: 502 | 504;
  /** Why; `only-if-cached`: the client forbade asking the upstream and nothing stored may answer. */
  detail: 'UPSTREAM-CONNECT' | 'UPSTREAM-RESET' | 'UPSTREAM-TIMEOUT' | 'UPSTREAM-ERROR' | 'only-if-cached';
  message: string;
}

/** Writes a 502/504 with a short text body and `Cache-Status: sidecache; fwd=…; detail=…`. */
export function writeGatewayError(res: ServerResponse, failure: GatewayFailure, fwd: ForwardReason, withBody = true): void {
  const body = `${failure.message}\n`;
  res.writeHead(failure.status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-status': formatCacheStatus({ fwd, detail: failure.detail }),
  });
  res.end(withBody ? body : undefined);
}

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);
const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'CERT_HAS_EXPIRED',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** Maps a transport error to the status a gateway answers with: timeouts 504, the rest 502. */
export function classifyUpstreamError(err: unknown): GatewayFailure {
  const code = (err as { code?: string } | null)?.code ?? '';
  const cause = (err as { cause?: { code?: string } } | null)?.cause?.code ?? '';
  if (TIMEOUT_CODES.has(code) || TIMEOUT_CODES.has(cause)) {
    return { status: 504, detail: 'UPSTREAM-TIMEOUT', message: `the upstream did not answer in time (${code || cause})` };
  }
  if (CONNECT_CODES.has(code) || CONNECT_CODES.has(cause)) {
    return { status: 502, detail: 'UPSTREAM-CONNECT', message: `cannot connect to the upstream (${code || cause})` };
  }
  return { status: 502, detail: 'UPSTREAM-RESET', message: `the upstream connection failed (${code || cause || (err as Error)?.message || 'unknown'})` };
}

/** An upstream error as one line for the debug log. */
export function errorText(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
