import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Clock } from '../../src/clock.js';

/** What the origin saw of one request. */
export interface SeenRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A node:http origin written for a test: it counts its calls per path and records each request. */
export interface Origin {
  readonly server: http.Server;
  readonly url: string;
  readonly port: number;
  readonly seen: SeenRequest[];
  /** Calls made to `path` (path and query as sent). */
  calls(path: string): number;
  close(): Promise<void>;
}

export type OriginHandler = (req: IncomingMessage, res: ServerResponse, call: number, body: string) => void;

/**
 * With `clock`, every response carries a `Date` from that clock (set before the handler runs, so a
 * handler may still override it): an origin must agree with the clock sidecache ages entries by,
 * or `Date`-based freshness (Expires, Last-Modified heuristics) would follow the wall clock.
 */
export async function startOrigin(handler: OriginHandler, options: { clock?: Clock } = {}): Promise<Origin> {
  const { clock } = options;
  const counts = new Map<string, number>();
  const seen: SeenRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = req.url ?? '/';
      const call = (counts.get(url) ?? 0) + 1;
      counts.set(url, call);
      const body = Buffer.concat(chunks).toString('utf8');
      seen.push({ method: req.method ?? '', url, headers: req.headers, body });
      if (clock !== undefined) res.setHeader('date', new Date(clock.now()).toUTCString());
      handler(req, res, call, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    url: `http://127.0.0.1:${port}`,
    port,
    seen,
    calls: (path) => counts.get(path) ?? 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
