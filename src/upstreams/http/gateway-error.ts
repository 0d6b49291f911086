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
  status: 502 | 503 | 504;
  /** Why; `only-if-cached`: the client forbade asking the upstream and nothing stored may answer. */
  detail: 'UPSTREAM-CONNECT' | 'UPSTREAM-RESET' | 'UPSTREAM-TIMEOUT' | 'UPSTREAM-ERROR' | 'UPSTREAM-QUEUE-FULL' | 'only-if-cached';
  message: string;
}

/** Seconds a client is asked to wait before trying again when every upstream connection is busy and the queue is full. */
const QUEUE_FULL_RETRY_AFTER_S = 1;

/** The listener's queue for upstream connections is full (`maxQueued`): answered 503 at once, nothing sent upstream. */
export class UpstreamQueueFullError extends Error {
  readonly code = 'SC_UPSTREAM_QUEUE_FULL';
  constructor(limit: number) {
    super(`${limit} requests already wait for an upstream connection`);
    this.name = 'UpstreamQueueFullError';
  }
}

/** No response headers within headersTimeout of the request's arrival, the wait for a connection included. */
export class UpstreamDeadlineError extends Error {
  readonly code = 'SC_UPSTREAM_HEADERS_DEADLINE';
  constructor(ms: number) {
    super(`no response headers within ${ms}ms (queued for a connection, or sent)`);
    this.name = 'UpstreamDeadlineError';
  }
}

/** Why an upstream request failed, as the `reason` label of sidecache_upstream_errors_total. */
export type UpstreamErrorReason = 'connect' | 'timeout' | 'reset' | 'queue-full';

const REASON_OF_DETAIL: Partial<Record<GatewayFailure['detail'], UpstreamErrorReason>> = {
  'UPSTREAM-CONNECT': 'connect',
  'UPSTREAM-TIMEOUT': 'timeout',
  'UPSTREAM-QUEUE-FULL': 'queue-full',
};

export function upstreamErrorReason(err: unknown): UpstreamErrorReason {
  return REASON_OF_DETAIL[classifyUpstreamError(err).detail] ?? 'reset';
}

/**
 * Writes a 502/503/504 with a short text body and `Cache-Status: sidecache; fwd=…; detail=…`; a 503
 * says when to try again (RFC 9110 §10.2.3 Retry-After).
 */
export function writeGatewayError(res: ServerResponse, failure: GatewayFailure, fwd: ForwardReason, withBody = true): void {
  const body = `${failure.message}\n`;
  res.writeHead(failure.status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'cache-status': formatCacheStatus({ fwd, detail: failure.detail }),
    ...(failure.status === 503 && { 'retry-after': String(QUEUE_FULL_RETRY_AFTER_S) }),
  });
  res.end(withBody ? body : undefined);
}

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT', 'SC_UPSTREAM_HEADERS_DEADLINE']);
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
  if (err instanceof UpstreamQueueFullError) {
    return { status: 503, detail: 'UPSTREAM-QUEUE-FULL', message: `every upstream connection is busy and the queue is full (${err.message})` };
  }
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

/** A request target fit for a log line: its path, without the query (which may carry credentials such as `?api_key=…`). */
export function pathOnly(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : `${url.slice(0, q)}?…`;
}
