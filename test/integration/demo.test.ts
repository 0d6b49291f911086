import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

describe('sidecache demo --once', () => {
  it('starts an embedded PostgreSQL, the example API and sidecache, plays the tour and exits 0', async () => {
    const env = { ...process.env, SIDECACHE_DEMO_ADMIN: '127.0.0.1:0', SIDECACHE_DEMO_HTTP: '127.0.0.1:0', SIDECACHE_DEMO_PG: '127.0.0.1:0' };
    const ours = () => readdirSync(tmpdir()).filter((f) => /^(sidecache-demo-|pg-password-)/.test(f));
    const before = ours();
    const { stdout } = await run(process.execPath, ['dist/cli.js', 'demo', '--once'], { env, timeout: 60_000 });
    // Nothing of the demo's stays in the temporary directory (its data, a copy of the binaries, a password file).
    expect(ours()).toEqual(before);
    const lines = stdout.split('\n');
    const http = lines.filter((l) => l.includes('GET /products/7'));
    expect(http.map((l) => /Cache-Status: sidecache; (hit|fwd=uri-miss)/.exec(l)?.[1])).toEqual(['fwd=uri-miss', 'hit', 'fwd=uri-miss', 'hit']);
    // The labels are sidecache's own word (its counters), and the hit is counted in /metrics too.
    expect(stdout).toMatch(/\(from PostgreSQL\) \{"products":"100"/);
    expect(stdout).toMatch(/\(hit\) \{"products":"100"/);
    expect(stdout).toMatch(/postgres +hit ratio \d+% \([1-9]\d* of \d+\)/);
    expect(stdout).toMatch(/live page +http:\/\/127\.0\.0\.1:\d+\//);
    expect(stdout).toMatch(/http +hit ratio \d+% \(\d+ of \d+\)/);
  }, 90_000);
});
