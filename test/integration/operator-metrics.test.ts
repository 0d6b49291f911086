/** Issue 18 point 3: the metrics operators expect, scraped from /metrics of a real server. */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { Logger } from '../../src/log.js';
import { SidecacheServer } from '../../src/server.js';
import { useHttpSetup } from '../helpers/http-setup.js';
import { startOrigin } from '../helpers/origin.js';
import { connect, pgUnreachable, startPgSidecache } from '../helpers/pg.js';
import { sample } from '../helpers/sidecache.js';
import { waitFor } from '../helpers/wait.js';

const setup = useHttpSetup();
const pgDown = await pgUnreachable();
const stops: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

const scrape = async (server: SidecacheServer): Promise<string> => (await fetch(`${server.adminUrl}/metrics`)).text();
/** Whether the text has the series at all (at 0 or more): `sample` reads 0 for an absent one too. */
const hasSeries = (text: string, name: string, labels: Record<string, string>): boolean =>
  text.split('\n').some((line) => line.startsWith(`${name}{`) && Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)));

describe('metrics operators expect', () => {
  it('exports every counter of known label values at 0 right after start, and build_info', async () => {
    const { server } = await setup(() => undefined, '', 'invalidation:\n  - { type: redis, url: "redis://127.0.0.1:1", heartbeat: 1s }\n');
    const text = await scrape(server);
    for (const result of ['hit', 'miss', 'stale', 'bypass', 'error']) {
      expect(hasSeries(text, 'sidecache_requests_total', { protocol: 'http', listener: 'api', result }), result).toBe(true);
    }
    for (const reason of ['connect', 'timeout', 'reset', 'queue-full']) {
      expect(hasSeries(text, 'sidecache_upstream_errors_total', { protocol: 'http', listener: 'api', reason }), reason).toBe(true);
    }
    for (const cls of ['2xx', '3xx', '4xx', '5xx'])
      expect(hasSeries(text, 'sidecache_upstream_responses_total', { listener: 'api', class: cls }), cls).toBe(true);
    for (const result of ['applied', 'rejected']) expect(hasSeries(text, 'sidecache_reload_total', { result })).toBe(true);
    for (const reason of ['size', 'ttl', 'invalidation']) expect(hasSeries(text, 'sidecache_evictions_total', { reason })).toBe(true);
    const bus = server.buses[0]!.name;
    expect(hasSeries(text, 'sidecache_bus_gaps_total', { bus })).toBe(true);
    for (const source of ['admin', bus, 'http:api']) expect(hasSeries(text, 'sidecache_invalidations_total', { source }), source).toBe(true);
    expect(hasSeries(text, 'sidecache_invalidation_errors_total', { source: bus })).toBe(true);
    expect(hasSeries(text, 'sidecache_connections_refused_total', { listener: 'api', reason: 'limit' })).toBe(true);
    expect(text).toMatch(/^sidecache_last_reload_timestamp_seconds 0$/m);
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(sample(text, 'sidecache_build_info', { version, node: process.version })).toBe(1);
  });

  it('counts upstream responses by status class (200, 404, 502) and the pool connections as upstream connections', async () => {
    const { server, base } = await setup((req, res) => {
      const status = Number(req.url!.slice(1));
      res.writeHead(status, { 'cache-control': 'no-store' });
      res.end(String(status));
    });
    for (const status of [200, 404, 502]) expect((await fetch(`${base}/${status}`)).status).toBe(status);
    const text = await scrape(server);
    const responses = (cls: string) => sample(text, 'sidecache_upstream_responses_total', { protocol: 'http', listener: 'api', class: cls });
    expect([responses('2xx'), responses('3xx'), responses('4xx'), responses('5xx')]).toEqual([1, 0, 1, 1]);
    expect(sample(text, 'sidecache_upstream_connections', { protocol: 'http', listener: 'api' })).toBeGreaterThanOrEqual(1);
  });

  it('counts reloads: applied for a good file, rejected for a bad one, with the time of the last applied', async () => {
    const origin = await startOrigin((_req, res) => res.end('x'));
    stops.push(() => origin.close());
    const yaml = (ttl: string) =>
      `admin: { listen: "127.0.0.1:0" }\nhttp:\n  - name: api\n    listen: "127.0.0.1:0"\n    upstream: "${origin.url}"\n    defaultTtl: ${ttl}\n`;
    const file = join(mkdtempSync(join(tmpdir(), 'sidecache-reload-metrics-')), 'sidecache.yaml');
    writeFileSync(file, yaml('1s'));
    const server = new SidecacheServer(await loadConfig(file), { configFile: file, log: new Logger({ level: 'silent' }) });
    await server.start();
    stops.push(() => server.stop(100));
    writeFileSync(file, yaml('2s'));
    await server.reloadFromFile();
    writeFileSync(file, yaml('not-a-duration'));
    await expect(server.reloadFromFile()).rejects.toThrow(/defaultTtl/);
    const text = await scrape(server);
    expect(sample(text, 'sidecache_reload_total', { result: 'applied' })).toBe(1);
    expect(sample(text, 'sidecache_reload_total', { result: 'rejected' })).toBe(1);
    expect(sample(text, 'sidecache_last_reload_timestamp_seconds')).toBeGreaterThan(1_600_000_000);
  });

  it.skipIf(pgDown !== undefined)('PostgreSQL: counts SQLSTATE classes of upstream responses, and client and upstream connections', async () => {
    const { server, port } = await startPgSidecache();
    stops.push(() => server.stop(100));
    const client = await connect(port);
    stops.push(() => client.end());
    await client.query('SELECT 1');
    await expect(client.query('SELECT * FROM no_such_table_issue18')).rejects.toThrow(/does not exist/);
    // node-postgres rejects at the ErrorResponse; sidecache counts the response at its ReadyForQuery.
    const errors = async () => sample(await scrape(server), 'sidecache_upstream_responses_total', { protocol: 'postgres', listener: 'main', class: '42' });
    await waitFor(async () => (await errors()) > 0, 'the 42P01 response to be counted');
    const text = await scrape(server);
    expect(sample(text, 'sidecache_upstream_responses_total', { protocol: 'postgres', listener: 'main', class: '42' })).toBe(1);
    expect(sample(text, 'sidecache_upstream_responses_total', { protocol: 'postgres', listener: 'main', class: '00' })).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'sidecache_client_connections', { protocol: 'postgres', listener: 'main' })).toBe(1);
    expect(sample(text, 'sidecache_upstream_connections', { protocol: 'postgres', listener: 'main' })).toBe(1);
    for (const reason of ['authentication', 'permission', 'unreachable', 'timeout', 'version', 'other']) {
      expect(hasSeries(text, 'sidecache_postgres_catalog_errors_total', { listener: 'main', reason }), reason).toBe(true);
    }
  });
});
