/**
 * Issue 16 point 9: an upstream PostgreSQL that cannot be reached is visible. Each failed
 * connection is counted in sidecache_upstream_errors_total{protocol="postgres",listener,reason} and
 * logged at warn, at most once per reason every 10 s (the next line says how many were held back).
 */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import pg from 'pg';
import { parseConfig } from '../../../src/config/load.js';
import { Logger } from '../../../src/log.js';
import { SidecacheServer } from '../../../src/server.js';
import { metric } from '../../helpers/sidecache.js';

/** A loopback port nothing listens on: bound, then closed. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('postgres listener: upstream failures', () => {
  it('counts every refused upstream connection and logs one warning per reason', async () => {
    const lines: Record<string, unknown>[] = [];
    const log = new Logger({ level: 'debug', sink: (line) => lines.push(JSON.parse(line) as Record<string, unknown>) });
    const dead = await closedPort();
    const config = parseConfig(
      `admin: { listen: "127.0.0.1:0" }\npostgres:\n  - name: main\n    listen: "127.0.0.1:0"\n    upstream: "postgres://127.0.0.1:${dead}?sslmode=disable"\n`,
      'test.yaml',
      {},
    );
    const server = new SidecacheServer(config, { log });
    await server.start();
    try {
      const port = server.postgresListeners[0]!.address.port;
      for (let i = 0; i < 3; i++) {
        const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'test' });
        await expect(client.connect()).rejects.toMatchObject({ code: '08006' });
      }
      expect(await metric(server, 'sidecache_upstream_errors_total', { protocol: 'postgres', listener: 'main', reason: 'connect' })).toBe(3);
      const warnings = lines.filter((l) => l.level === 'warn' && l.msg === 'cannot connect to the upstream PostgreSQL');
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatchObject({ reason: 'connect', upstream: `127.0.0.1:${dead}`, err: 'ECONNREFUSED', listener: 'main' });
    } finally {
      await server.stop(100);
    }
  });
});
