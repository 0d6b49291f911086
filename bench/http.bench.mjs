// HTTP listener macro-benchmark, with wrk (https://github.com/wg/wrk) as the load generator.
// In one run, every server pinned to one core (BENCH_SERVER_CPUS, default 0) and wrk to the
// other (BENCH_LOAD_CPUS, default 1), each scenario measures sidecache beside its limits:
//   origin  the upstream asked directly;
//   bare    a node:http server answering the same bytes from memory: the limit of a hit;
//   proxy   node:http + an undici Pool, no cache: the limit of a miss and a pass;
// (bench/http/servers.mjs). Every sidecache row is a ratio to its limit and to the origin, with
// p50/p99; rows with a 20 ms origin say what sidecache adds. Rows are medians of BENCH_RUNS runs
// (default 3), interleaved: run 1 of every scenario, then run 2, … cpu = the server's CPU time per
// request (user + system, /proc), which other tenants of the machine disturb less than req/s.
// autocannon is not used: it saturates before the servers do and makes them all look alike.
// BENCH_BASE=<dir>: a second sidecache, started from <dir>/dist/cli.js (a build of an earlier
// commit, with its own node_modules or a link to these), measured in every run right after this
// one, on the same config: the report then gives both CPU times per request and the req/s ratio.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runWrk } from './lib/wrk.mjs';

const DURATION_S = Number(process.env.BENCH_DURATION ?? 5);
const WARM_S = Number(process.env.BENCH_WARM ?? 1);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SERVER_CPUS = process.env.BENCH_SERVER_CPUS ?? '0';
const LOAD_CPUS = process.env.BENCH_LOAD_CPUS ?? '1';
const BASE = process.env.BENCH_BASE;
const ONLY = process.env.BENCH_ONLY === undefined ? undefined : new RegExp(process.env.BENCH_ONLY);
const root = new URL('../', import.meta.url);
const lua = fileURLToPath(new URL('http/wrk.lua', import.meta.url));

/** name, path, wrk mode, connections, the limit row it is compared with. */
const SCENARIOS = [
  ['hit-1k', '/h?size=1024', 'fixed', 64, 'bare'],
  ['hit-16k', '/h?size=16384', 'fixed', 64, 'bare'],
  ['hit-1k-c1', '/h?size=1024', 'fixed', 1, 'bare'],
  ['hit-16k-c1', '/h?size=16384', 'fixed', 1, 'bare'],
  ['miss-1k', '/m?size=1024&delay=0', 'unique', 64, 'proxy'],
  ['miss-1k-d20', '/m?size=1024&delay=20', 'unique', 64, 'proxy'],
  ['miss-1k-c1', '/m?size=1024&delay=0', 'unique', 1, 'proxy'],
  ['pass-1k', '/p?size=1024&nostore=1', 'fixed', 64, 'proxy'],
  ['mixed', '/x?size=1024', 'mixed', 64, 'bare'],
  // Issue 19: a gateway listener's hit (its route found by a prepared lookup past two routes that do
  // not match) against the single-upstream listener's hit: the limit row is sidecache itself.
  ['hit-1k-routed', '/h?size=1024', 'fixed', 64, 'sidecache', 'gateway'],
].filter(([name]) => ONLY === undefined || ONLY.test(name));

const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
if (!has('wrk')) {
  console.log('SKIPPED: wrk is not installed (apt-get install wrk); the HTTP bench needs it');
} else {
  await main();
}

async function main() {
  const pinned = has('taskset');
  if (!pinned) console.log('WARNING: taskset not found: servers and wrk run unpinned');
  const pin = (cpus, args) => (pinned ? ['taskset', ['-c', cpus, ...args]] : [args[0], args.slice(1)]);

  function startChild(args, readPort, cwd = root) {
    const [cmd, argv] = pin(SERVER_CPUS, [process.execPath, ...args]);
    const child = spawn(cmd, argv, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    return new Promise((resolve, reject) => {
      let out = '';
      const onData = (chunk) => {
        out += chunk;
        const port = readPort(out);
        if (port !== undefined) {
          child.stdout.removeListener('data', onData);
          child.stderr.removeListener('data', onData);
          child.stdout.resume();
          child.stderr.resume();
          resolve({ child, port });
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code}: ${out}`)));
    });
  }
  const portLine = (out) => (/^(\d+)$/m.exec(out) ? Number(/^(\d+)$/m.exec(out)[1]) : undefined);
  const origin = await startChild(['bench/http/servers.mjs', 'origin'], portLine);
  const bare = await startChild(['bench/http/servers.mjs', 'bare'], portLine);
  const proxy = await startChild(['bench/http/servers.mjs', 'proxy', String(origin.port)], portLine);
  const dir = mkdtempSync(join(tmpdir(), 'sidecache-bench-'));
  const file = join(dir, 'bench.yaml');
  writeFileSync(
    file,
    `admin: { listen: "127.0.0.1:0" }\ncache: { maxBytes: 512MiB }\nhttp:\n  - { name: bench, listen: "127.0.0.1:0", upstream: "http://127.0.0.1:${origin.port}" }\n`,
  );
  const readyPort = (out) => {
    const match = /"msg":"http listener ready"[^\n]*"address":"[^"]*:(\d+)"/.exec(out);
    return match ? Number(match[1]) : undefined;
  };
  const side = await startChild(['dist/cli.js', 'start', '-c', file], readyPort);
  const base = BASE === undefined ? undefined : await startChild(['dist/cli.js', 'start', '-c', file], readyPort, BASE);
  const gatewayFile = join(dir, 'gateway.yaml');
  const to = `http://127.0.0.1:${origin.port}`;
  writeFileSync(
    gatewayFile,
    `admin: { listen: "127.0.0.1:0" }\ncache: { maxBytes: 512MiB }\nhttp:\n  - name: gw\n    listen: "127.0.0.1:0"\n    routes:\n` +
      `      - { name: billing, host: billing.test, upstream: "${to}" }\n` +
      `      - { name: users, host: "*.users.test", path: "/users/**", upstream: "${to}" }\n` +
      `      - { name: api, path: /h, upstream: "${to}" }\n`,
  );
  const gateway = SCENARIOS.some((s) => s[5] === 'gateway')
    ? await startChild(['dist/cli.js', 'start', '-c', gatewayFile], (out) => {
        const match = /"msg":"http listener ready"[^\n]*"address":"[^"]*:(\d+)"/.exec(out);
        return match ? Number(match[1]) : undefined;
      })
    : undefined;
  const servers = { origin, bare, proxy, sidecache: side, ...(gateway !== undefined && { gateway }), ...(base !== undefined && { base }) };
  let nonce = 0;

  /** CPU ticks (user + system, all threads) the process used so far. */
  const ticks = (pid) => {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      return Number(fields[11]) + Number(fields[12]);
    } catch {
      // Not Linux: no CPU column.
      return NaN;
    }
  };

  async function wrk(port, path, mode, conns, seconds) {
    const threads = conns === 1 ? 1 : 2;
    const args = ['-t', String(threads), '-c', String(conns), '-d', `${seconds}s`, '--timeout', '5s', '-s', lua, `http://127.0.0.1:${port}${path}`];
    const [cmd, argv] = pin(LOAD_CPUS, ['wrk', ...args]);
    return runWrk(cmd, argv, mode, `${process.pid}-${nonce++}`, `${path} on ${port}`);
  }

  /** Every mixed-workload key stored before the measured runs (the 10% unique URLs then miss). */
  async function warmKeys(port, path) {
    for (let k = 1; k <= 1000; k += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, i) => fetch(`http://127.0.0.1:${port}${path}&k=${k + i}`).then((r) => r.arrayBuffer())));
    }
  }

  async function cell(name, [, path, mode, conns], server) {
    const { port, child } = servers[name];
    if (WARM_S > 0) await wrk(port, path, mode, conns, WARM_S);
    const before = ticks(child.pid);
    const r = await wrk(port, path, mode, conns, DURATION_S);
    r.cpuUs = ((ticks(child.pid) - before) * 10_000) / r.reqs;
    return r;
  }

  const results = new Map(SCENARIOS.map(([name]) => [name, { origin: [], limit: [], sidecache: [], base: [] }]));
  try {
    if (SCENARIOS.some(([, , mode]) => mode === 'mixed')) for (const s of [side, bare, base]) if (s !== undefined) await warmKeys(s.port, '/x?size=1024');
    for (let run = 1; run <= RUNS; run++) {
      for (const scenario of SCENARIOS) {
        const [name, , , , limit, subject = 'sidecache'] = scenario;
        const load = readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
        const row = results.get(name);
        row.origin.push(await cell('origin', scenario));
        row.limit.push(await cell(limit, scenario));
        // With a baseline build, the two alternate which goes first, run by run.
        const withBase = base !== undefined && subject === 'sidecache';
        if (withBase && run % 2 === 0) row.base.push(await cell('base', scenario));
        row.sidecache.push(await cell(subject, scenario));
        if (withBase && run % 2 === 1) row.base.push(await cell('base', scenario));
        const last = (k) => row[k][row[k].length - 1];
        const baseText = row.base.length === run ? ` | base ${fmt(last('base'))}` : '';
        console.log(
          `run ${run} ${name.padEnd(12)} origin ${fmt(last('origin'))} | ${limit.padEnd(5)} ${fmt(last('limit'))} | sidecache ${fmt(last('sidecache'))}${baseText}  (load ${load})`,
        );
      }
    }
  } finally {
    for (const p of Object.values(servers)) p.child.kill('SIGTERM');
    await Promise.all(Object.values(servers).map((p) => (p.child.exitCode === null ? once(p.child, 'exit') : undefined)));
  }
  report(results);
}

function fmt(r) {
  return `${Math.round(r.rps).toString().padStart(6)}/s ${r.p50.toFixed(2)}/${r.p99.toFixed(2)} ms ${r.cpuUs.toFixed(1)} µs`;
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function report(results) {
  const cols = [
    'scenario',
    'limit',
    'req/s',
    'p50 ms',
    'p99 ms',
    'cpu µs/req',
    ...(BASE === undefined ? [] : ['base cpu µs/req', 'base /limit', '/base']),
    '/limit',
    '/origin',
    'limit req/s',
    'limit p99',
    'limit cpu µs/req',
    'origin req/s',
    '+p50 ms',
    '+p99 ms',
  ];
  console.log(`\nsidecache, medians of ${RUNS} run(s) of ${DURATION_S} s (ratios and added latency per run, then the median):`);
  console.log(`| ${cols.join(' | ')} |`);
  console.log(`|${cols.map(() => '---').join('|')}|`);
  for (const [name, , , , limit] of SCENARIOS) {
    const { origin, limit: lim, sidecache: side, base } = results.get(name);
    const m = (rows, key) => median(rows.map((r) => r[key]));
    const per = (f) => median(side.map((s, i) => f(s, lim[i], origin[i], base[i])));
    const cells = [
      name,
      limit,
      Math.round(m(side, 'rps')),
      m(side, 'p50').toFixed(3),
      m(side, 'p99').toFixed(3),
      m(side, 'cpuUs').toFixed(1),
      ...(BASE === undefined
        ? []
        : base.length === 0
          ? ['', '', '']
          : [m(base, 'cpuUs').toFixed(1), per((s, l, o, b) => b.rps / l.rps).toFixed(2), per((s, l, o, b) => s.rps / b.rps).toFixed(2)]),
      per((s, l) => s.rps / l.rps).toFixed(2),
      per((s, l, o) => s.rps / o.rps).toFixed(2),
      Math.round(m(lim, 'rps')),
      m(lim, 'p99').toFixed(3),
      m(lim, 'cpuUs').toFixed(1),
      Math.round(m(origin, 'rps')),
      per((s, l, o) => s.p50 - o.p50).toFixed(3),
      per((s, l, o) => s.p99 - o.p99).toFixed(3),
    ];
    console.log(`| ${cells.join(' | ')} |`);
  }
}
