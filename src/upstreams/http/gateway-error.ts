import type { ServerResponse } from 'node:http';
import { type ForwardReason, formatCacheStatus } from './cache-status.js';

/** The answer a gateway makes itself when the upstream fails: a status, a one-line reason. */
export interface GatewayFailure {
  status: number;
  /** Cache-Status `detail` token, such as UPSTREAM-CONNECT. */
  detail: string;
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
