import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { counting, useHttpSetup } from '../helpers/http-setup.js';
import { sample } from '../helpers/sidecache.js';

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

const setup = useHttpSetup();

describe.skipIf(!hasChromium())('admin live page in a real headless browser', () => {
  it('loads, and shows numbers that match /metrics', async () => {
    const { server, base } = await setup(counting());
    for (const path of ['/a', '/a', '/a', '/b']) await fetch(`${base}${path}`);
    await fetch(`${server.adminUrl}/invalidate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"tags":["nothing"]}' });
    const page = await fetch(`${server.adminUrl}/`);
    expect(page.headers.get('content-type')).toContain('text/html');
    const { stdout: dom } = await run(
      CHROMIUM,
      ['--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--virtual-time-budget=2500', '--dump-dom', `${server.adminUrl}/`],
      { timeout: 30_000 },
    );
    const text = (id: string) => new RegExp(`id="${id}">([^<]*)<`).exec(dom)?.[1];
    const metrics = await (await fetch(`${server.adminUrl}/metrics`)).text();
    expect(text('status')).toBe('live');
    expect(text('entries')).toBe(String(sample(metrics, 'sidecache_cache_entries')));
    const hits = sample(metrics, 'sidecache_requests_total', { protocol: 'http', listener: 'api', result: 'hit' });
    const misses = sample(metrics, 'sidecache_requests_total', { protocol: 'http', listener: 'api', result: 'miss' });
    expect([hits, misses]).toEqual([2, 2]);
    expect(text('hitRatio')).toBe('50.0%');
    expect(dom).toMatch(/<td>api<\/td><td>http<\/td><td>2<\/td><td>2<\/td>/);
    expect(dom).toMatch(/<td>admin<\/td><td>0<\/td>/);
  }, 60_000);
});
