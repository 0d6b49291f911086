/** When the catalog cannot be asked, nothing is cached for that database and user, and it is visible: one warning with the fix, and a counter by reason. */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { Logger } from '../../../src/log.js';
import { SidecacheServer } from '../../../src/server.js';
import { connect, PG, pgUnreachable, unique } from '../../helpers/pg.js';
import { metric } from '../../helpers/sidecache.js';

const unreachable = await pgUnreachable();

describe.skipIf(unreachable !== undefined)('postgres listener: catalog failures', () => {
  it('logs one SC_WARN_CATALOG_UNAVAILABLE per database, user and reason, with the fix, and counts every failure', async () => {
    const lines: string[] = [];
    const nobody = unique('nobody');
    const config = parseConfig(
      `admin: { listen: "127.0.0.1:0" }\npostgres:\n  - { name: main, listen: "127.0.0.1:0", upstream: "postgres://${PG.host}:${PG.port}?sslmode=disable", catalogUrl: "postgres://${nobody}@${PG.host}:${PG.port}" }\n`,
      'test.yaml',
      {},
    );
    const server = new SidecacheServer(config, { log: new Logger({ level: 'warn', sink: (line) => void lines.push(line) }), planWaitMs: 10_000 });
    await server.start();
    const client = await connect(server.postgresListeners[0]!.address.port);
    try {
      const table = unique('t');
      await client.query(`CREATE TABLE ${table} (v int); INSERT INTO ${table} VALUES (1)`);
      for (let i = 0; i < 3; i++) expect((await client.query(`SELECT v FROM ${table}`)).rows).toEqual([{ v: 1 }]);
      await client.query(`DROP TABLE ${table}`);
      const warnings = lines.map((l) => JSON.parse(l) as { code?: string; msg: string }).filter((l) => l.code === 'SC_WARN_CATALOG_UNAVAILABLE');
      expect(warnings).toHaveLength(1);
      expect(warnings[0]!.msg).toMatch(/nothing is cached for database "test" and user "postgres".*catalogUrl/);
      expect(await metric(server, 'sidecache_postgres_catalog_errors_total', { listener: 'main', reason: 'authentication' })).toBeGreaterThanOrEqual(1);
      expect(await metric(server, 'sidecache_requests_total', { protocol: 'postgres', listener: 'main', result: 'hit' })).toBe(0);
      // GET /cache says so beside the listener's counts.
      const summary = (await (await fetch(`${server.adminUrl}/cache`)).json()) as { listeners: Record<string, { catalogErrors?: Record<string, number> }> };
      expect(summary.listeners.main?.catalogErrors?.authentication).toBeGreaterThanOrEqual(1);
    } finally {
      await client.end();
      await server.stop(100);
    }
  });
});
