import http from 'node:http';

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/**
 * A plain node:http request. fetch() cannot be used where a test needs exact request fields:
 * it drops Connection and adds Cache-Control to conditional requests (Fetch spec).
 */
export function request(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: string; agent?: http.Agent; path?: string } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    // `path` is sent byte for byte (`//a`, `/./a`, an absolute URL): `url` alone would be normalised first.
    const target = options.path === undefined ? {} : { path: options.path };
    const req = http.request(url, { method: options.method ?? 'GET', headers: options.headers, agent: options.agent ?? false, ...target }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}
