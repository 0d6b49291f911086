import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.js';
import { Logger } from '../../src/log.js';
import { SidecacheServer } from '../../src/server.js';
import { counting } from '../helpers/http-setup.js';
import { type Origin, startOrigin } from '../helpers/origin.js';
import { redisClient, redisUnreachable, REDIS_URL } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';

const redisDown = await redisUnreachable();
const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

function configFile(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'sidecache-reload-')), 'sidecache.yaml');
  writeFileSync(file, text);
  return file;
}

const yaml = (origin: Origin, rules: string, extra = '') => `admin: { listen: "127.0.0.1:0" }
http:
  - name: api
    listen: "127.0.0.1:0"
    upstream: "${origin.url}"
    rules:
${rules}
${extra}`;

async function startFromFile(file: string): Promise<SidecacheServer> {
  const server = new SidecacheServer(await loadConfig(file), { configFile: file, log: new Logger({ level: 'silent' }) });
  await server.start();
  cleanup.push(() => server.stop(100));
  return server;
}

const reload = async (server: SidecacheServer) => {
  const res = await fetch(`${server.adminUrl}/reload`, { method: 'POST', headers: { 'content-type': 'application/json' } });
  return { status: res.status, body: (await res.json()) as { error?: string; applied?: string[]; needsRestart?: string[] } };
};

describe('reload (POST /reload and SIGHUP)', () => {
  it('changes rules and TTLs without dropping connections or the cache', async () => {
    const origin = await startOrigin(counting('max-age=60'));
    cleanup.push(() => origin.close());
    const file = configFile(yaml(origin, '      - { path: "/a", ttl: 1h }'));
    const server = await startFromFile(file);
    const base = server.httpListeners[0]!.url;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    cleanup.push(async () => agent.destroy());
    const get = (path: string) =>
      new Promise<{ status: string; reused: boolean }>((resolve, reject) => {
        const req = http.get(`${base}${path}`, { agent }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: String(res.headers['cache-status']), reused: req.reusedSocket }));
        });
        req.on('error', reject);
      });
    expect((await get('/a')).status).toBe('sidecache; fwd=uri-miss; ttl=3600; stored');
    await get('/b');
    writeFileSync(file, yaml(origin, '      - { path: "/a", cache: false }\n      - { path: "/c", ttl: 5m }'));
    expect(await reload(server)).toEqual({ status: 200, body: { applied: ['http[api]'], needsRestart: [] } });
    const bypass = await get('/a');
    expect(bypass).toEqual({ status: 'sidecache; fwd=bypass', reused: true });
    expect((await get('/b')).status).toMatch(/^sidecache; hit/);
    expect((await get('/c')).status).toBe('sidecache; fwd=uri-miss; ttl=300; stored');
  });

  it('reports changes that need a restart without applying them, and refuses an invalid file', async () => {
    const origin = await startOrigin(counting());
    cleanup.push(() => origin.close());
    const file = configFile(yaml(origin, '      - { path: "/a", ttl: 1h }'));
    const server = await startFromFile(file);
    const port = server.httpListeners[0]!.address.port;
    writeFileSync(file, yaml(origin, '      - { path: "/a", ttl: 2h }').replace('listen: "127.0.0.1:0"\n    upstream', 'listen: "127.0.0.1:1"\n    upstream'));
    const answer = await reload(server);
    expect(answer.body).toEqual({ applied: [], needsRestart: ['http[api].listen'] });
    expect(server.httpListeners[0]!.address.port).toBe(port);
    expect((await fetch(`${server.httpListeners[0]!.url}/a`)).headers.get('cache-status')).toContain('ttl=3600');
    writeFileSync(file, 'http: [{ name: api, listen: "nope" }]');
    const refused = await reload(server);
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatch(/http\[0\]\.listen/);
    expect((await fetch(`${server.httpListeners[0]!.url}/a`)).headers.get('cache-status')).toMatch(/hit/);
  });

  it.skipIf(redisDown !== undefined)('adds a bus: /readyz and invalidation follow', async () => {
    const origin = await startOrigin(counting());
    cleanup.push(() => origin.close());
    const file = configFile(yaml(origin, '      - { path: "/a", ttl: 1h }'));
    const server = await startFromFile(file);
    const channel = `reload_${process.pid}_${Date.now()}`;
    writeFileSync(file, yaml(origin, '      - { path: "/a", ttl: 1h }', `invalidation:\n  - { type: redis, url: "${REDIS_URL}", channel: ${channel} }\n`));
    expect((await reload(server)).body).toEqual({ applied: ['invalidation'], needsRestart: [] });
    expect(server.buses.map((b) => b.connected)).toEqual([true]);
    server.store.set('x', { body: Buffer.from('x'), ttlMs: 60_000, tags: ['t'] });
    const redis = redisClient();
    cleanup.push(async () => redis.disconnect());
    await redis.publish(channel, '{"tags":["t"]}');
    await waitFor(() => !server.store.has('x'), 'the message on the added bus');
  });

  /** `sidecache start` as a child process on a config file of its own; `log()` is its stderr so far. */
  async function startChild() {
    const origin = await startOrigin(counting());
    cleanup.push(() => origin.close());
    const file = configFile(yaml(origin, '      - { path: "/a", ttl: 1h }'));
    const child = spawn(process.execPath, ['dist/cli.js', 'start', '-c', file], { stdio: ['ignore', 'ignore', 'pipe'] });
    cleanup.push(async () => {
      child.kill('SIGTERM');
      if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
    });
    let text = '';
    child.stderr!.on('data', (c) => (text += c));
    return { origin, file, child, log: () => text };
  }

  it('SIGHUP reloads a running process', async () => {
    const { origin, file, child, log } = await startChild();
    const logged = async (pattern: RegExp, what: string) => {
      await waitFor(() => pattern.test(log()), what, 10_000);
      return pattern.exec(log())!;
    };
    const address = (await logged(/"msg":"http listener ready"[^\n]*"address":"([^"]+)"/, 'the child to listen'))[1];
    // The SIGHUP handler is installed once start() has finished ("ready"); a SIGHUP before it would end the process.
    await logged(/"msg":"ready"/, 'the child to be ready');
    writeFileSync(file, yaml(origin, '      - { path: "/a", cache: false }'));
    child.kill('SIGHUP');
    await logged(/"msg":"config reloaded"[^\n]*"applied":\["http\[api\]"\]/, 'the reload to be logged');
    expect((await fetch(`http://${address}/a`)).headers.get('cache-status')).toBe('sidecache; fwd=bypass');
  });

  it('a SIGHUP while the process is starting does not end it: the file is read again once started', async () => {
    const { origin, file, child, log } = await startChild();
    // "config loaded" comes before the listeners start: the new file is what the process runs with.
    await waitFor(() => log().includes('"msg":"config loaded"'), 'the child to load its config', 10_000);
    writeFileSync(file, yaml(origin, '      - { path: "/a", cache: false }'));
    child.kill('SIGHUP');
    await waitFor(() => /"msg":"config reloaded"[^\n]*"applied":\["http\[api\]"\]/.test(log()), 'the reload once started', 10_000);
    expect(child.exitCode).toBeNull();
    const address = /"msg":"http listener ready"[^\n]*"address":"([^"]+)"/.exec(log())![1];
    expect((await fetch(`http://${address}/a`)).headers.get('cache-status')).toBe('sidecache; fwd=bypass');
  });
});
