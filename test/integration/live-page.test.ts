import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { counting, useHttpSetup } from '../helpers/http-setup.js';
import { connect, PG, pgUnreachable, unique } from '../helpers/pg.js';
import { sample, startSidecache } from '../helpers/sidecache.js';

const run = promisify(execFile);
const CHROMIUM = process.env.CHROMIUM ?? 'chromium';

function hasChromium(): boolean {
  try {
    execFileSync(CHROMIUM, ['--version'], { stdio: 'pipe' });
    return true;
  } catch {
    console.warn(`SKIPPED: the live page test needs ${CHROMIUM} (Debian package "chromium"; .ci/run installs it)`);
    return false;
  }
}

/** The page's DOM after its script has run for a while (virtual time: two polls of /live at least). */
async function renderedPage(adminUrl: string): Promise<string> {
  const { stdout } = await run(
    CHROMIUM,
    ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--virtual-time-budget=2500', '--dump-dom', `${adminUrl}/`],
    { timeout: 30_000 },
  );
  return stdout;
}

const setup = useHttpSetup();
const pgDown = await pgUnreachable();

describe.skipIf(!hasChromium())('admin live page in a real headless browser', () => {
  it('loads, and shows numbers that match /metrics', async () => {
    const { server, base } = await setup(counting());
    for (const path of ['/a', '/a', '/a', '/b']) await fetch(`${base}${path}`);
    await fetch(`${server.adminUrl}/invalidate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"tags":["nothing"]}' });
    const page = await fetch(`${server.adminUrl}/`);
    expect(page.headers.get('content-type')).toContain('text/html');
    const dom = await renderedPage(server.adminUrl);
    const text = (id: string) => new RegExp(`id="${id}">([^<]*)<`).exec(dom)?.[1];
    const metrics = await (await fetch(`${server.adminUrl}/metrics`)).text();
    expect(text('status')).toBe('live');
    expect(text('entries')).toBe(String(sample(metrics, 'sidecache_cache_entries')));
    const hits = sample(metrics, 'sidecache_requests_total', { protocol: 'http', listener: 'api', result: 'hit' });
    const misses = sample(metrics, 'sidecache_requests_total', { protocol: 'http', listener: 'api', result: 'miss' });
    expect([hits, misses]).toEqual([2, 2]);
    expect(text('hitRatio')).toBe('50.0%');
    expect(dom).toMatch(/<td>api<\/td><td>http<\/td><td>2<\/td><td>2<\/td>/);
    // Each recent invalidation says what it named.
    expect(dom).toMatch(/<td>admin<\/td><td>nothing<\/td><td>0<\/td>/);
    expect(dom).toMatch(/<tbody id="buses"><tr><td>none<\/td>/);
    expect(dom).toMatch(/<tbody id="upstreamErrors"><tr><td>none<\/td>/);
    expect(dom).toMatch(/<tbody id="topByHits"><tr><td>\/a<\/td><td>api<\/td><td>2<\/td>/);
    expect(dom).toMatch(/<tbody id="catalogErrors"><tr><td>none<\/td>/);
  }, 60_000);

  it.skipIf(pgDown !== undefined)(
    "shows a PostgreSQL listener's catalog errors by reason, with the count GET /cache has",
    async () => {
      // A catalog identity the server does not know: every catalog question fails to log in (a real 28000 from PostgreSQL).
      const server = await startSidecache(
        `postgres:\n  - { name: main, listen: "127.0.0.1:0", upstream: "postgres://${PG.host}:${PG.port}?sslmode=disable", catalogUrl: "postgres://${unique('nobody')}@${PG.host}:${PG.port}" }\n`,
        { planWaitMs: 10_000 },
      );
      const client = await connect(server.postgresListeners[0]!.address.port);
      try {
        await client.query('SELECT 1 AS one');
        const counted = async () =>
          ((await (await fetch(`${server.adminUrl}/cache`)).json()) as { listeners: Record<string, { catalogErrors?: Record<string, number> }> }).listeners.main
            ?.catalogErrors?.authentication ?? 0;
        const before = await counted();
        expect(before).toBeGreaterThanOrEqual(1);
        const dom = await renderedPage(server.adminUrl);
        const shown = /<tbody id="catalogErrors"><tr class="failing"><td>main<\/td><td>authentication<\/td><td>(\d+)<\/td><\/tr><\/tbody>/.exec(dom)?.[1];
        // The page polls GET /live, which reads the same counter as GET /cache.
        expect(Number(shown)).toBeGreaterThanOrEqual(before);
        expect(Number(shown)).toBeLessThanOrEqual(await counted());
        expect(dom).toContain('nothing is cached for that database and user');
      } finally {
        await client.end();
        await server.stop(100);
      }
    },
    60_000,
  );
});
