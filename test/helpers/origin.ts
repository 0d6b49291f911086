import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

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

export async function startOrigin(handler: OriginHandler): Promise<Origin> {
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
