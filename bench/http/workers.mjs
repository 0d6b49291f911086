// `workers: 1` against `workers: 2`, and nginx proxy_cache with worker_processes 1 and 2, on hits
// and misses of 1 KiB (docs/workers.md "Measurements"). Not part of `npm run bench`: it needs nginx
// and wrk, and the nginx contender config of ../shared/bench-compare (BENCH_COMPARE to override).
// Nothing is pinned: the servers, the origin and wrk share the machine's cores, as workers would.
// Runs interleave (round 1 of every cell, then round 2, …); each cell prints its median of RUNS.
// cpu = CPU time of the whole server (the primary and its workers, nginx's master and workers)
// per request, from /proc; req/s and p99 follow the machine's other load, cpu much less.
// Usage: npm run build && node bench/http/workers.mjs   (RUNS=3 DURATION_S=4 CONNS=64 ONLY=regex)
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { runWrk } from '../lib/wrk.mjs';

const RUNS = Number(process.env.RUNS ?? 3);
const DURATION_S = Number(process.env.DURATION_S ?? 4);
const WARM_S = Number(process.env.WARM_S ?? 1);
const CONNS = Number(process.env.CONNS ?? 64);
const ONLY = process.env.ONLY === undefined ? undefined : new RegExp(process.env.ONLY);
const root = new URL('../../', import.meta.url).pathname;
// Beside the main checkout (../shared), or beside the worktrees' folder (../../shared).
const compare = resolve(
  process.env.BENCH_COMPARE ?? ['../shared/bench-compare', '../../shared/bench-compare'].map((p) => join(root, p)).find((p) => existsSync(p)) ?? '.',
);
const lua = join(root, 'bench/http/wrk.lua');
const dir = mkdtempSync(join(tmpdir(), 'sidecache-workers-bench-'));
const children = [];

const SCENARIOS = [
  ['hit-1k', '/api/item?size=1024&delay=0', 'fixed'],
  ['miss-1k', '/api/item?size=1024&delay=0', 'unique'],
];

function freePort() {
  return new Promise((res) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

async function waitPort(port) {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise((res) => {
      const socket = net.connect(port, '127.0.0.1', () => (socket.destroy(), res(true)));
      socket.on('error', () => res(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on ${port}`);
}

function start(command, args, env = {}) {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  child.stdout.resume();
  child.stderr.resume();
  children.push(child);
  return child;
}

/** CPU ticks (user + system) of a process and of its children, so far. */
function treeTicks(pid) {
  let sum = 0;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    sum += Number(fields[11]) + Number(fields[12]);
    for (const child of readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) sum += treeTicks(Number(child));
  } catch {
    // A process that exited meanwhile: its ticks are gone with it.
  }
  return sum;
}

async function sidecache(workers, originPort) {
  const port = await freePort();
  const file = join(dir, `sidecache-${workers}.yaml`);
  writeFileSync(
    file,
    `workers: ${workers}\nadmin: { listen: "127.0.0.1:${await freePort()}" }\ncache: { maxBytes: 256MiB }\n` +
      `http:\n  - { name: bench, listen: "127.0.0.1:${port}", upstream: "http://127.0.0.1:${originPort}" }\n`,
  );
  const child = start(process.execPath, [join(root, 'dist/cli.js'), 'start', '-c', file], { SIDECACHE_LOG_LEVEL: 'warn' });
  await waitPort(port);
  // Every worker listens once the primary says ready; the port answers as soon as the first does.
  await new Promise((r) => setTimeout(r, 1500));
  return { port, child };
}

async function nginx(workers, originPort) {
  const port = await freePort();
  const home = join(dir, `nginx-${workers}`);
  mkdirSync(home);
  const conf = readFileSync(join(compare, 'http/nginx.conf.in'), 'utf8')
    .replaceAll('@DIR@', home)
    .replaceAll('@PORT@', String(port))
    .replaceAll('@ORIGIN_HOST@', '127.0.0.1')
    .replaceAll('@ORIGIN_PORT@', String(originPort))
    .replaceAll('@WORKERS@', String(workers))
    .replaceAll('@USER@', userInfo().username);
  writeFileSync(join(home, 'nginx.conf'), conf);
  const child = start('nginx', ['-p', home, '-e', join(home, 'error.log'), '-c', join(home, 'nginx.conf')]);
  await waitPort(port);
  return { port, child };
}

let nonce = 0;
async function wrk(port, path, mode, seconds) {
  const argv = ['-t', '2', '-c', String(CONNS), '-d', `${seconds}s`, '--timeout', '5s', '-s', lua, `http://127.0.0.1:${port}${path}`];
  return runWrk('wrk', argv, mode, `${process.pid}-${nonce++}`, `${path} on ${port}`);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

try {
  if (spawnSync('wrk', ['--version']).error !== undefined) throw new Error('wrk is not installed');
  const origin = start(process.execPath, [join(root, 'bench/http/servers.mjs'), 'origin']);
  const originPort = await new Promise((res) => origin.stdout.once('data', (d) => res(Number(String(d).trim()))));
  const contenders = [
    ['sidecache workers: 1', () => sidecache(1, originPort)],
    ['sidecache workers: 2', () => sidecache(2, originPort)],
    ['nginx worker_processes 1', () => nginx(1, originPort)],
    ['nginx worker_processes 2', () => nginx(2, originPort)],
  ].filter(([name]) => ONLY === undefined || ONLY.test(name));
  const servers = new Map();
  for (const [name, make] of contenders) servers.set(name, await make());
  const results = new Map();
  for (let run = 1; run <= RUNS; run++) {
    for (const [scenario, path, mode] of SCENARIOS) {
      for (const [name] of contenders) {
        const { port, child } = servers.get(name);
        if (mode === 'fixed' && WARM_S > 0) await wrk(port, path, mode, WARM_S);
        const load = Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
        const before = treeTicks(child.pid);
        const r = await wrk(port, path, mode, DURATION_S);
        r.cpuUs = ((treeTicks(child.pid) - before) * 10_000) / r.reqs;
        r.load = load;
        const key = `${scenario}|${name}`;
        results.set(key, [...(results.get(key) ?? []), r]);
        console.error(`run ${run} ${scenario} ${name}: ${r.rps.toFixed(0)} req/s, p99 ${r.p99.toFixed(1)} ms, cpu ${r.cpuUs.toFixed(1)} µs/req, load ${load}`);
      }
    }
  }
  console.log(`| scenario | server | req/s | p99 ms | cpu µs/req | load avg |`);
  console.log(`|---|---|---|---|---|---|`);
  for (const [key, rs] of results) {
    const [scenario, name] = key.split('|');
    const m = (f) => median(rs.map((r) => r[f]));
    console.log(
      `| ${scenario} | ${name} | ${m('rps').toFixed(0)} | ${m('p99').toFixed(1)} | ${m('cpuUs').toFixed(1)} | ${Math.min(...rs.map((r) => r.load))}–${Math.max(...rs.map((r) => r.load))} |`,
    );
  }
} finally {
  for (const child of children) child.kill('SIGTERM');
}
