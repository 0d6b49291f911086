/**
 * Issue 16 point 7, under a real descriptor limit: the built CLI runs in a child process limited to
 * 64 open files (prlimit), and 80 sockets connect to its PostgreSQL listener and never speak. Past
 * the limit libuv accepts and closes every new connection at once, admin included, and says
 * nothing; sidecache notices (a warning, sidecache_descriptors_exhausted_total), and loginTimeout
 * frees the descriptors (the clients never close their side themselves), so the admin server
 * answers again.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { sample } from '../../helpers/sidecache.js';
import { waitFor } from '../../helpers/wait.js';

const cli = join(import.meta.dirname, '../../../dist/cli.js');
const unavailable = (() => {
  if (process.platform !== 'linux') return 'SKIPPED: descriptor limits are tested on Linux only';
  if (!existsSync(cli)) return 'SKIPPED: dist/cli.js is not built (npm run build)';
  try {
    execFileSync('prlimit', ['--version'], { stdio: 'pipe' });
    return undefined;
  } catch {
    return 'SKIPPED: prlimit (util-linux) is not installed';
  }
})();
if (unavailable !== undefined) console.warn(unavailable);

/** A loopback port free now: bound, then closed. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** GET on the admin server, or undefined when the connection is dropped (as it is past the limit). */
async function adminGet(port: number, path: string): Promise<{ status: number; text: string } | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(1000) });
    return { status: res.status, text: await res.text() };
  } catch {
    // Dropped or timed out: what a client sees of a process out of descriptors.
    return undefined;
  }
}

describe.skipIf(unavailable !== undefined)('descriptor limit (prlimit on the CLI)', () => {
  let child: ChildProcess | undefined;
  let dir: string | undefined;
  const sockets: net.Socket[] = [];
  afterEach(() => {
    for (const s of sockets.splice(0)) s.destroy();
    child?.kill('SIGKILL');
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('notices running out of descriptors, and loginTimeout gives them back', async () => {
    const [adminPort, pgPort] = [await freePort(), await freePort()];
    dir = mkdtempSync(join(tmpdir(), 'sidecache-fd-'));
    const config = join(dir, 'sidecache.yaml');
    // The upstream is never reached: the clients never send a startup packet.
    writeFileSync(
      config,
      `admin: { listen: "127.0.0.1:${adminPort}" }\npostgres:\n  - name: main\n    listen: "127.0.0.1:${pgPort}"\n    upstream: "postgres://127.0.0.1:1"\n    loginTimeout: 3s\n`,
    );
    let stderr = '';
    // 128: Node's module loader opens the modules it loads at once, and needs a few dozen to start.
    child = spawn('prlimit', ['--nofile=128:128', process.execPath, cli, 'start', '-c', config], {
      env: { ...process.env, SIDECACHE_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    await waitFor(() => stderr.includes('"msg":"ready"'), 'the child to start', 15_000);

    for (let i = 0; i < 160; i++) {
      const socket = net.connect(pgPort, '127.0.0.1');
      socket.on('error', () => undefined);
      sockets.push(socket);
    }
    await waitFor(() => stderr.includes('out of file descriptors'), 'the warning', 10_000);
    // The silent clients never close; their descriptors come back at loginTimeout.
    await waitFor(async () => (await adminGet(adminPort, '/healthz'))?.status === 200, 'the admin server to answer again', 15_000);
    await waitFor(() => stderr.includes('file descriptors available again'), 'the recovery to be logged', 10_000);
    const metrics = (await adminGet(adminPort, '/metrics'))!.text;
    expect(sample(metrics, 'sidecache_descriptors_exhausted_total')).toBeGreaterThanOrEqual(1);
    expect(sample(metrics, 'sidecache_login_timeouts_total', { listener: 'main' })).toBeGreaterThanOrEqual(1);
  }, 60_000);
});
