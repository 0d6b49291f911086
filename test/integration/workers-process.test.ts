/**
 * Issue 14 point 4, the processes of `workers: 2` (built CLI): access lines name their worker, a
 * reload reaches every worker, and a worker that cannot listen fails the start as one process would.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { type Origin, startOrigin } from '../helpers/origin.js';
import { waitFor } from '../helpers/wait.js';
import { requestAlone, spawnWorkers, type WorkersInstance } from '../helpers/workers.js';

const run = promisify(execFile);

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    // ESRCH: no such process.
    return false;
  }
}

describe('issue 14: the processes of workers: 2', () => {
  let origin: Origin;
  /** Where a reload moves the listener's upstream. */
  let second: Origin;
  let sc: WorkersInstance;
  const config = (ttl: string) => `workers: 2
admin: { listen: "127.0.0.1:0" }
log: { access: true }
http:
  - { name: api, listen: "127.0.0.1:0", upstream: "ORIGIN", defaultTtl: ${ttl} }
`;

  beforeAll(async () => {
    // No freshness of its own: the listener's defaultTtl decides.
    origin = await startOrigin((_req, res, n) => res.end(`call ${n}`));
    second = await startOrigin((_req, res) => res.end('second'));
    sc = await spawnWorkers(config('10s').replace('ORIGIN', origin.url));
  }, 60_000);
  afterAll(async () => {
    await sc?.stop();
    await origin?.close();
    await second?.close();
  });

  it('writes access lines that name the worker that answered', async () => {
    for (let i = 0; i < 6; i++) await requestAlone(`${sc.http!}/access/${i}`);
    await waitFor(() => (sc.stdout().match(/"msg":"access"/g) ?? []).length >= 6, 'six access lines');
    const lines = sc
      .stdout()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { msg: string; worker: number; path: string });
    expect(new Set(lines.filter((l) => l.path.startsWith('/access/')).map((l) => l.worker))).toEqual(new Set([1, 2]));
  });

  it('a reload is applied by every worker', async () => {
    writeFileSync(sc.file, config('100s').replace('ORIGIN', origin.url));
    const res = await fetch(`${sc.admin}/reload`, { method: 'POST', headers: { 'content-type': 'application/json' } });
    expect(await res.json()).toEqual({ applied: ['http[api]'], needsRestart: [] });
    const held = async () =>
      ((await (await fetch(`${sc.admin}/cache/entries?prefix=/reloaded`)).json()) as { entries: { worker: number; ttlSeconds: number }[] }).entries;
    await waitFor(async () => {
      await requestAlone(`${sc.http!}/reloaded`);
      return (await held()).length === 2;
    }, '/reloaded cached in both workers');
    for (const entry of await held()) expect(entry.ttlSeconds).toBeGreaterThan(10);
  });

  it('a reload that needs new processes starts new workers beside the old, which stop once the new serve; the port answers all along', async () => {
    const before = [...sc.workerPids().values()];
    let failures = 0;
    let done = false;
    const load = (async () => {
      while (!done) await requestAlone(`${sc.http!}/during`).catch(() => failures++);
    })();
    writeFileSync(sc.file, config('100s').replace('ORIGIN', second.url));
    const res = await fetch(`${sc.admin}/reload`, { method: 'POST', headers: { 'content-type': 'application/json' } });
    expect(await res.json()).toEqual({ applied: ['http[api].upstream'], needsRestart: [] });
    const after = [...sc.workerPids().values()];
    expect(after.filter((pid) => before.includes(pid))).toEqual([]);
    for (const pid of before) await waitFor(() => !isAlive(pid), `old worker ${pid} gone`);
    done = true;
    await load;
    expect(failures).toBe(0);
    for (let i = 0; i < 4; i++) expect((await requestAlone(`${sc.http!}/second`)).body).toBe('second');
  });

  it('a reload whose new workers cannot start leaves the running ones serving, and says what it could not apply', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    onTestFinished(() => void taken.close());
    const port = (taken.address() as net.AddressInfo).port;
    const before = [...sc.workerPids().values()];
    writeFileSync(sc.file, config('100s').replace('ORIGIN', second.url).replace('127.0.0.1:0", upstream', `127.0.0.1:${port}", upstream`));
    const res = await fetch(`${sc.admin}/reload`, { method: 'POST', headers: { 'content-type': 'application/json' } });
    expect(await res.json()).toEqual({ applied: [], needsRestart: ['http[api].listen'] });
    expect(sc.log()).toContain('the new workers did not start');
    expect([...sc.workerPids().values()]).toEqual(before);
    for (const pid of before) expect(isAlive(pid)).toBe(true);
    expect((await requestAlone(`${sc.http!}/still`)).body).toBe('second');
    expect((await fetch(`${sc.admin}/readyz`)).status).toBe(200);
  });

  it('sidecache check accepts workers from 1 to 64 and names the key otherwise', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sidecache-workers-'));
    const check = (value: string) => {
      writeFileSync(join(dir, 'w.yaml'), `workers: ${value}\n`);
      return spawnSync(process.execPath, ['dist/cli.js', 'check', '-c', join(dir, 'w.yaml')], { encoding: 'utf8' });
    };
    expect(check('4')).toMatchObject({ status: 0, stdout: 'ok\n' });
    const refused = check('0');
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('workers: expected a whole number from 1 to 64, got 0');
  });

  it('a worker that cannot listen fails the start, and nothing is left running', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as net.AddressInfo).port;
    const file = join(mkdtempSync(join(tmpdir(), 'sidecache-workers-')), 'sidecache.yaml');
    writeFileSync(file, `workers: 2\nadmin: { listen: "127.0.0.1:0" }\nhttp:\n  - { name: api, listen: "127.0.0.1:${port}", upstream: "${origin.url}" }\n`);
    const child = spawn(process.execPath, ['dist/cli.js', 'start', '-c', file], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr!.on('data', (chunk) => (log += chunk));
    const [code] = await once(child, 'exit');
    taken.close();
    expect(code).toBe(1);
    expect(log).toContain(`cannot listen on 127.0.0.1:${port}`);
    expect(log).toMatch(/worker \d exited \(code 1\) before it was ready/);
    // The other worker went with the primary (pgrep exits 1 when nothing matches).
    await waitFor(
      async () =>
        (await run('pgrep', ['-f', file]).then(
          () => 0,
          (err: { code: number }) => err.code,
        )) === 1,
      'no process of that file',
    );
  });
});
