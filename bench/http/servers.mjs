// Child process for bench/http.bench.mjs: `bare` answers stored bytes straight from memory (the
// ceiling for a Node process); `origin` is the upstream sidecache and the direct runs talk to.
// Prints the bound port on stdout.
import http from 'node:http';

const [mode] = process.argv.slice(2);
const bodies = new Map([1024, 16384].map((size) => [size, Buffer.alloc(size, 'x')]));
const sizeOf = (url) => Number(url.split('/')[2]);

const server = http.createServer((req, res) => {
  const body = bodies.get(sizeOf(req.url)) ?? bodies.get(1024);
  if (mode === 'bare') {
    res.writeHead(200, ['content-type', 'application/json', 'cache-control', 'max-age=3600', 'content-length', String(body.length)]);
    res.end(body);
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=3600', 'content-length': body.length });
  res.end(body);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
