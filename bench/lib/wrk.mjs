// Runs wrk with bench/http/wrk.lua and reads the one summary line that script prints.
import { spawn } from 'node:child_process';
import { once } from 'node:events';

/** `cmd argv` is wrk (or taskset … wrk); `mode` and `nonce` reach wrk.lua. Throws on socket errors or non-2xx/3xx answers. */
export async function runWrk(cmd, argv, mode, nonce, label) {
  const child = spawn(cmd, argv, { env: { ...process.env, BENCH_MODE: mode, BENCH_NONCE: nonce } });
  let out = '';
  child.stdout.on('data', (c) => (out += c));
  child.stderr.on('data', (c) => (out += c));
  await once(child, 'exit');
  const m = /WRK rps=([\d.]+) p50_ms=([\d.]+) p99_ms=([\d.]+) reqs=(\d+) errors=(\d+) non2xx=(\d+)/.exec(out);
  if (m === null) throw new Error(`wrk gave no result: ${out}`);
  const [rps, p50, p99, reqs, errors, non2xx] = m.slice(1).map(Number);
  if (errors > 0 || non2xx > 0) throw new Error(`${label}: ${errors} socket errors, ${non2xx} non-2xx/3xx`);
  return { rps, p50, p99, reqs };
}
