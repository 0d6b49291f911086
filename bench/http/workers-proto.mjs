// Measurement aid for docs/workers.md (not part of `npm run bench`): N copies of `sidecache start`
// as node:cluster workers sharing the listeners' ports, each with its own store, no invalidation
// relay and no aggregated admin. It measures what `workers: N` could give at most, nothing more.
// Usage: node bench/http/workers-proto.mjs <config.yaml> <workers>   (ports in the config must be fixed)
import cluster from 'node:cluster';

const [file, count] = process.argv.slice(2);
if (file === undefined) throw new Error('usage: workers-proto.mjs <config.yaml> <workers>');
cluster.setupPrimary({ exec: new URL('../../dist/cli.js', import.meta.url).pathname, args: ['start', '-c', file] });
const workers = Array.from({ length: Number(count ?? 2) }, () => cluster.fork());
const stop = () => {
  for (const w of workers) w.process.kill('SIGTERM');
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
