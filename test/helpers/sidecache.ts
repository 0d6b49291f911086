import { parseConfig } from '../../src/config/load.js';
import { Logger } from '../../src/log.js';
import { type ServerOptions, SidecacheServer } from '../../src/server.js';

/**
 * A sidecache in-process on loopback port 0, built from YAML, silent unless SIDECACHE_LOG_LEVEL
 * says otherwise. Pass a `ManualClock` as `clock` to move its time by hand.
 */
export async function startSidecache(
  yaml: string,
  options: Pick<ServerOptions, 'clock' | 'unsafeWithoutFillGuard' | 'planWaitMs' | 'catalogIdleMs' | 'catalogWaitMs' | 'publishWaitMs' | 'accessSink'> = {},
): Promise<SidecacheServer> {
  const admin = /^admin:/m.test(yaml) ? '' : 'admin: { listen: "127.0.0.1:0" }\n';
  const config = parseConfig(admin + yaml, 'test.yaml', process.env);
  const server = new SidecacheServer(config, { ...options, log: new Logger({ level: (process.env.SIDECACHE_LOG_LEVEL as 'silent') ?? 'silent' }) });
  await server.start();
  return server;
}

/** One http listener in front of `upstream`; `extra` is YAML for more listener keys, indented by 4. */
export function httpListenerYaml(upstream: string, extra = ''): string {
  return `http:\n  - name: api\n    listen: "127.0.0.1:0"\n    upstream: "${upstream}"\n${extra}`;
}

/** Reads the value of one sample from Prometheus text, or 0 when absent. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const match = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null || match[1] !== name) continue;
    const have = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(match[3]);
  }
  return 0;
}

/** One sample of the server's own registry (no HTTP round trip), or 0 when absent. */
export async function metric(server: SidecacheServer, name: string, labels: Record<string, string> = {}): Promise<number> {
  return sample(await server.registry.metrics(), name, labels);
}
