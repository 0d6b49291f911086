import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { installSql, uninstallSql } from '../../src/invalidation/triggers.js';

const cli = new URL('../../dist/cli.js', import.meta.url).pathname;
const root = new URL('../..', import.meta.url).pathname;

function run(...args: string[]) {
  // A timeout: a child that never exits fails its test instead of blocking the whole run.
  return spawnSync(process.execPath, [cli, ...args], { cwd: root, encoding: 'utf8', timeout: 60_000, env: { ...process.env, SIDECACHE_LOG_LEVEL: 'info' } });
}

describe('sidecache CLI (built)', () => {
  it('check prints ok for a valid file, and every problem with exit 1 for a bad file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sidecache-'));
    writeFileSync(join(dir, 'good.yaml'), 'http:\n  - { name: api, listen: "127.0.0.1:0", upstream: "http://127.0.0.1:1" }\n');
    expect(run('check', '-c', join(dir, 'good.yaml'))).toMatchObject({ status: 0, stdout: 'ok\n' });
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'cache:\n  maxBytes: lots\n  colour: blue\nshutdownGrace: abc\n');
    const result = run('check', '-c', bad);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('cache.maxBytes');
    expect(result.stderr).toContain('cache.colour: unknown key');
    expect(result.stderr).toContain('shutdownGrace: expected a duration');
  });

  it('check reports gateway routes that can never match (issue 19), with exit 1', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sidecache-'));
    const file = join(dir, 'gateway.yaml');
    writeFileSync(
      file,
      'http:\n  - name: gw\n    listen: "127.0.0.1:0"\n    routes:\n      - { path: "/api/**", upstream: "http://127.0.0.1:1" }\n      - { path: /api/v2, upstream: "http://127.0.0.1:2" }\n',
    );
    const result = run('check', '-c', file);
    expect(result).toMatchObject({
      status: 1,
      stdout: 'http[0].routes[1]: can never match: every request it matches goes to http[0].routes[0], listed before it\n',
    });
    rmSync(dir, { recursive: true });
  });

  it('check and start open every file the configuration names and read it as PEM: key path, file and reason, no stack trace', () => {
    // The documented example names files of a real deployment, which this machine does not have.
    const example = run('check', '-c', 'config/sidecache.yaml');
    expect(example.status).toBe(1);
    expect(example.stderr).toContain('postgres[0].tls.cert: /etc/sidecache/tls.crt: cannot read it (ENOENT)');
    expect(example.stderr).toContain('http[0].ca: ./upstream-ca.pem: cannot read it (ENOENT)');
    expect(example.stderr).toContain('http[1].routes[0].ca: ./billing-ca.pem: cannot read it (ENOENT)');
    const dir = mkdtempSync(join(tmpdir(), 'sidecache-'));
    writeFileSync(join(dir, 'bad.pem'), 'not a certificate\n');
    const file = join(dir, 'tls.yaml');
    writeFileSync(
      file,
      `postgres:\n  - { name: main, listen: "127.0.0.1:0", upstream: "postgres://127.0.0.1:5432", tls: { cert: "${join(dir, 'bad.pem')}", key: "${join(dir, 'bad.pem')}" } }\n`,
    );
    for (const command of ['check', 'start']) {
      const result = run(command, '-c', file);
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(/postgres\[0\]\.tls\.cert: .*bad\.pem: expected a PEM certificate/);
      expect(result.stderr).toMatch(/postgres\[0\]\.tls\.key: .*bad\.pem: expected a PEM private key/);
      expect(result.stderr).not.toMatch(/\n\s+at /);
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints help and version, and refuses unknown commands with exit 2', () => {
    expect(run('--help').stdout).toContain('sidecache start');
    expect(run('--help').stdout).toContain('check [-c FILE] --connect');
    const checkHelp = run('check', '--help');
    expect(checkHelp.status).toBe(0);
    expect(checkHelp.stdout).toMatch(/--connect .*logs in to its upstream/);
    expect(checkHelp.stdout).toContain('--password-file F');
    // Every command answers --help with its own usage, exit 0 (start, demo and invalidate refused the option).
    for (const [command, synopsis] of [
      ['start', 'sidecache start [-c FILE]'],
      ['demo', 'sidecache demo [--once]'],
      ['invalidate', 'sidecache invalidate [--admin URL]'],
      ['sql', 'sidecache sql triggers --channel C'],
    ]) {
      const help = run(command!, '--help');
      expect(help.status).toBe(0);
      expect(help.stdout).toContain(synopsis);
      expect(help.stdout).not.toContain('sidecache check');
    }
    // The login options mean nothing without --connect: a usage error, as unknown options always were.
    expect(run('check', '-c', 'config/sidecache.yaml', '--user', 'u').status).toBe(2);
    expect(run('--version').stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    expect(run('frobnicate').status).toBe(2);
    expect(run('invalidate').status).toBe(2);
  });

  it('sql triggers prints the trigger SQL (applied to a real database in triggers.test.ts), and usage errors with exit 2', () => {
    const install = run('sql', 'triggers', '--channel', 'chan', '--schema', 'app', '--all-tables', '--ddl');
    expect(install).toMatchObject({ status: 0, stdout: installSql({ channel: 'chan', tables: [], allTables: true, schema: 'app', ddl: true }) });
    const listed = run('sql', 'triggers', '--channel', 'chan', '--tables', 'a, b');
    expect(listed).toMatchObject({ status: 0, stdout: installSql({ channel: 'chan', tables: ['a', 'b'], allTables: false, schema: 'public', ddl: false }) });
    const uninstall = run('sql', 'triggers', '--channel', 'chan', '--schema', 'app', '--ddl', '--uninstall');
    expect(uninstall).toMatchObject({ status: 0, stdout: uninstallSql({ channel: 'chan', tables: [], allTables: false, schema: 'app', ddl: true }) });
    const noChannel = run('sql', 'triggers', '--tables', 'a');
    expect(noChannel.status).toBe(2);
    expect(noChannel.stderr).toMatch(/--channel/);
  });

  it('start serves the admin API, invalidate reaches it with the token, and SIGTERM exits 0 within the grace', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sidecache-'));
    const file = join(dir, 'sidecache.yaml');
    writeFileSync(file, 'shutdownGrace: 2s\nadmin:\n  listen: 127.0.0.1:0\n  token: ${TOKEN}\n');
    const child = spawn(process.execPath, [cli, 'start', '-c', file], { env: { ...process.env, TOKEN: 'tok', SIDECACHE_LOG_LEVEL: 'info' } });
    let stderr = '';
    const address = await new Promise<string>((resolve, reject) => {
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        const match = /"msg":"admin listening","address":"([^"]+)"/.exec(stderr);
        if (match) resolve(match[1]!);
      });
      child.once('exit', () => reject(new Error(`exited early: ${stderr}`)));
    });
    for (const line of stderr.trim().split('\n')) expect(() => JSON.parse(line)).not.toThrow();
    expect(stderr).not.toContain('tok"');
    const admin = `http://${address}`;
    expect((await fetch(`${admin}/readyz`)).status).toBe(200);
    const denied = spawnSync(process.execPath, [cli, 'invalidate', '--admin', admin, '--tag', 'x'], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, SIDECACHE_ADMIN_TOKEN: '' },
    });
    expect(denied.status).toBe(1);
    expect(denied.stderr).toContain('401');
    const ok = await new Promise<{ status: number | null; stdout: string }>((resolve) => {
      const c = spawn(process.execPath, [cli, 'invalidate', '--admin', admin, '--token', 'tok', '--tag', 'x', '--table', 'accounts', '--prefix', '/u/']);
      let stdout = '';
      c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      c.on('exit', (status) => resolve({ status, stdout }));
    });
    expect(ok).toEqual({ status: 0, stdout: 'invalidated 0\n' });
    child.kill('SIGTERM');
    // 'close', not 'exit': the last log lines may still be in the pipe when the process exits.
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    expect(code).toBe(0);
    expect(stderr).toContain('"msg":"stopping"');
    // Within the grace: nothing was still in flight at the deadline and closed by force.
    expect(stderr).toMatch(/"msg":"stopped"[^\n]*"forced":false/);
  });
});
