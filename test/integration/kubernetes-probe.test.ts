import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { Logger } from '../../src/log.js';
import { SidecacheServer } from '../../src/server.js';
import { manifest, mountedConfig, probedPorts, sidecar } from '../helpers/kubernetes-example.js';

const run = promisify(execFile);

/** A loopback port nothing listens on: bound, then closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * The example's startup probe, run as the kubelet runs it (`node -e …` inside the container, exit
 * code 0 = started), against a sidecache built from the example's own configuration with its buses
 * and upstreams unreachable: the pod must start while a bus is down (issue 17). Ports are the bound
 * ones (the configuration's are moved to port 0, the script is pointed at what was bound).
 */
describe('examples/kubernetes: the startup probe', () => {
  const docs = manifest();
  const { container } = sidecar(docs);
  const mounted = mountedConfig(docs);
  afterAll(mounted.cleanup);

  async function probe(ports: number[]): Promise<number> {
    const command = container.startupProbe!.exec!.command;
    const script = command.at(-1)!.replace(/\[[\d,\s]+\]\.map\(accepts\)/, `[${ports.join(', ')}].map(accepts)`);
    try {
      await run(process.execPath, [...command.slice(1, -1), script], { timeout: 15_000 });
      return 0;
    } catch (err) {
      return (err as { code?: number }).code ?? -1;
    }
  }

  it('passes once both listeners accept although every bus is down, and /readyz stays 200 saying the cache bypasses', async () => {
    expect(probedPorts(container.startupProbe)).toHaveLength(2);
    const nowhere = `127.0.0.1:${await closedPort()}`;
    const yaml = mounted.yaml
      .replace(/0\.0\.0\.0:9090/g, '127.0.0.1:0')
      .replace(/127\.0\.0\.1:(8080|6432)/g, '127.0.0.1:0')
      .replace(/[a-z-]+\.default\.svc\.cluster\.local(:\d+)?/g, nowhere);
    const config = parseConfig(yaml, 'kubernetes example', {});
    const server = new SidecacheServer(config, { log: new Logger({ level: 'silent' }) });
    await server.start();
    let stopped = false;
    try {
      const ports = [...server.httpListeners, ...server.postgresListeners].map((l) => l.address.port);
      expect(await probe(ports)).toBe(0);
      // Ready all the same, the cache serving by whileDown (issue 17), the buses named in the body.
      const readyz = await fetch(`${server.adminUrl}/readyz`);
      expect(readyz.status).toBe(200);
      const { degraded, serving } = (await readyz.json()) as { degraded: string[]; serving: string };
      expect(degraded.length).toBe(2);
      expect(degraded.every((r) => r.startsWith('bus '))).toBe(true);
      expect(serving).toMatch(/^bypass/);
      await server.stop(1_000);
      stopped = true;
      expect(await probe(ports)).toBe(1);
    } finally {
      if (!stopped) await server.stop(1_000);
    }
  });

  it('fails while one of the listeners does not accept', async () => {
    const open = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => open.listen(0, '127.0.0.1', resolve));
    try {
      expect(await probe([(open.address() as { port: number }).port, await closedPort()])).toBe(1);
    } finally {
      await new Promise((resolve) => open.close(resolve));
    }
  });
});
