// HTTP listener macro-benchmark. In one run, for 1 KiB and 16 KiB bodies:
//   (a) bare:   a node:http server answering the same bytes from memory (the ceiling for Node);
//   (b) hit:    sidecache answering from its store;
//   (c) direct: the origin asked directly, and miss: sidecache forwarding every request (unique URLs).
// Throughput with autocannon (50 connections, 5 s); latency p50/p99 from 2,000 sequential
// requests on one keep-alive connection. Ratios: hit/bare and miss/direct. Each server runs in
// its own process; the load generator runs here.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { Pool } from 'undici';

const DURATION_S = Number(process.env.BENCH_DURATION ?? 5);
const CONNECTIONS = 50;
const SEQUENTIAL = 2000;
const root = new URL('../', import.meta.url);

function startChild(args, readPort) {
  const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (chunk) => {
      out += chunk;
      const port = readPort(out);
      if (port !== undefined) resolve({ child, port });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code}: ${out}`)));
  });
}

const startServer = (mode) => startChild(['bench/http/servers.mjs', mode], (out) => (/^(\d+)$/m.exec(out) ? Number(/^(\d+)$/m.exec(out)[1]) : undefined));

async function startSidecache(originPort) {
  const dir = mkdtempSync(join(tmpdir(), 'sidecache-bench-'));
  const file = join(dir, 'bench.yaml');
  writeFileSync(
    file,
    `admin: { listen: "127.0.0.1:0" }\ncache: { maxBytes: 512MiB }\nhttp:\n  - { name: bench, listen: "127.0.0.1:0", upstream: "http://127.0.0.1:${originPort}" }\n`,
  );
  return startChild(['dist/cli.js', 'start', '-c', file], (out) => {
    const match = /"msg":"http listener ready"[^\n]*"address":"[^"]*:(\d+)"/.exec(out);
    return match ? Number(match[1]) : undefined;
  });
}

async function throughput(port, size, unique) {
  let n = 0;
  const result = await autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: CONNECTIONS,
    duration: DURATION_S,
    requests: [{ method: 'GET', setupRequest: (req) => ({ ...req, path: unique ? `/m/${size}/${n++}` : `/h/${size}` }) }],
  });
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`port ${port}: ${result.non2xx} non-2xx, ${result.errors} errors`);
  return result.requests.average;
}

async function latency(port, size, unique) {
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 1 });
  const times = [];
  for (let i = 0; i < SEQUENTIAL + 200; i++) {
    const t0 = process.hrtime.bigint();
    const res = await pool.request({ method: 'GET', path: unique ? `/l/${size}/${i}-${Math.random()}` : `/h/${size}` });
    await res.body.arrayBuffer();
    if (i >= 200) times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  await pool.close();
  times.sort((a, b) => a - b);
  return { p50: times[Math.floor(times.length * 0.5)], p99: times[Math.floor(times.length * 0.99)] };
}

async function measure(port, size, unique) {
  if (!unique) await latency(port, size, false); // warm: the first request fills the entry
  const rps = await throughput(port, size, unique);
  const lat = await latency(port, size, unique);
  return { rps, ...lat };
}

const bare = await startServer('bare');
const origin = await startServer('origin');
const side = await startSidecache(origin.port);
const fmt = (r) => `${Math.round(r.rps).toLocaleString('en-US').padStart(8)} req/s  p50 ${r.p50.toFixed(3)} ms  p99 ${r.p99.toFixed(3)} ms`;
try {
  for (const size of [1024, 16384]) {
    const a = await measure(bare.port, size, false);
    const b = await measure(side.port, size, false);
    const direct = await measure(origin.port, size, true);
    const miss = await measure(side.port, size, true);
    const kib = `${size / 1024} KiB`;
    console.log(`${kib.padEnd(6)} (a) bare node:http   ${fmt(a)}`);
    console.log(`${kib.padEnd(6)} (b) sidecache hit    ${fmt(b)}   hit/bare ${(b.rps / a.rps).toFixed(2)}`);
    console.log(`${kib.padEnd(6)} (c) origin direct    ${fmt(direct)}`);
    console.log(
      `${kib.padEnd(6)} (c) sidecache miss   ${fmt(miss)}   miss/direct ${(miss.rps / direct.rps).toFixed(2)}  p50 added ${(miss.p50 - direct.p50).toFixed(3)} ms`,
    );
  }
} finally {
  for (const p of [bare, origin, side]) p.child.kill('SIGTERM');
}
await Promise.all([bare, origin, side].map((p) => (p.child.exitCode === null ? once(p.child, 'exit') : undefined)));
