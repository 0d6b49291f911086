// Child processes for bench/http.bench.mjs, each printing its bound port on stdout:
//   origin  the upstream: `/<any>?size=N&delay=MS&nostore=1` answers N bytes (JSON-shaped) after
//           MS ms, `Cache-Control: public, max-age=300` (or `no-store`), a strong ETag, 304 on
//           If-None-Match;
//   bare    the hit limit: the same bytes and fields from memory, no proxying (a caching proxy in
//           Node can at best approach it);
//   proxy   the miss/pass limit: node:http + an undici Pool to the origin, streaming every request
//           through, no cache, no field work beyond hop-by-hop (`proxy <originPort>`).
import http from 'node:http';
import { createHash } from 'node:crypto';
import { Pool } from 'undici';

const [mode, originPort] = process.argv.slice(2);
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'upgrade', 'proxy-connection', 'host']);

const bodies = new Map();
function bodyFor(size) {
  let b = bodies.get(size);
  if (b === undefined) {
    const head = '{"id":1,"pad":"';
    const tail = '"}';
    const text = head + 'x'.repeat(Math.max(0, size - head.length - tail.length)) + tail;
    const body = Buffer.from(text.length > size ? 'x'.repeat(size) : text);
    b = { body, etag: `"${createHash('sha1').update(body).digest('hex').slice(0, 20)}"` };
    bodies.set(size, b);
  }
  return b;
}

function paramsOf(url) {
  const q = url.indexOf('?');
  const p = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
  return { size: Math.min(Number(p.get('size') ?? 1024) || 0, 64 << 20), delay: Number(p.get('delay') ?? 0) || 0, nostore: p.get('nostore') === '1' };
}

function fieldsOf(url) {
  const { size, nostore } = paramsOf(url);
  const { body, etag } = bodyFor(size);
  const fields = ['content-type', 'application/json', 'cache-control', nostore ? 'no-store' : 'public, max-age=300', 'etag', etag];
  return { body, etag, fields, full: [...fields, 'content-length', String(body.length)] };
}

function origin(req, res) {
  const { delay } = paramsOf(req.url);
  const { body, etag, fields, full } = fieldsOf(req.url);
  const answer = () => {
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, fields);
      res.end();
      return;
    }
    res.writeHead(200, full);
    res.end(body);
  };
  if (delay > 0) setTimeout(answer, delay);
  else answer();
}

const prepared = new Map();
function bare(req, res) {
  let e = prepared.get(req.url);
  if (e === undefined) {
    e = fieldsOf(req.url);
    if (prepared.size < 100_000) prepared.set(req.url, e);
  }
  if (req.headers['if-none-match'] === e.etag) {
    res.writeHead(304, e.fields);
    res.end();
    return;
  }
  res.writeHead(200, e.full);
  res.end(e.body);
}

function proxy() {
  const pool = new Pool(`http://127.0.0.1:${originPort}`, { connections: 256 });
  return (req, res) => {
    const headers = {};
    for (const [k, v] of Object.entries(req.headers)) if (!HOP.has(k)) headers[k] = v;
    pool.request({ method: req.method, path: req.url, headers, body: req.method === 'GET' || req.method === 'HEAD' ? null : req }).then(
      ({ statusCode, headers: h, body }) => {
        for (const k of Object.keys(h)) if (HOP.has(k)) delete h[k];
        res.writeHead(statusCode, h);
        body.pipe(res);
      },
      () => {
        res.statusCode = 502;
        res.end();
      },
    );
  };
}

const handler = mode === 'origin' ? origin : mode === 'bare' ? bare : mode === 'proxy' ? proxy() : undefined;
if (handler === undefined) throw new Error(`usage: servers.mjs origin|bare|proxy <originPort>, got ${mode}`);
const server = http.createServer({ keepAliveTimeout: 65_000 }, handler);
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
