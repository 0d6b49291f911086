/**
 * Issue 19: one HTTP listener in front of several APIs, routed by host and path (`http[].routes`),
 * each origin a real server on loopback.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import type { SidecacheServer } from '../../../src/server.js';
import { request } from '../../helpers/client.js';
import { type Origin, startOrigin } from '../../helpers/origin.js';
import { rawRequest } from '../../helpers/raw-http.js';
import { metric, startSidecache } from '../../helpers/sidecache.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/** An origin that names itself in every body, counts calls per URL, and tags with `tags` when given. */
function service(name: string, extra: Record<string, string> = {}) {
  return (req: IncomingMessage, res: ServerResponse, n: number): void => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(201, { location: 'items/created' });
      return void res.end(`${name} wrote`);
    }
    res.writeHead(200, { 'cache-control': 'max-age=60', ...extra });
    res.end(`${name} ${req.url} ${n}`);
  };
}

async function origins(...names: string[]): Promise<Record<string, Origin>> {
  const out: Record<string, Origin> = {};
  for (const name of names) {
    const origin = await startOrigin(service(name, { 'surrogate-key': `svc:${name}`, 'x-tags': `own:${name}` }));
    cleanup.push(() => origin.close());
    out[name] = origin;
  }
  return out;
}

/** A gateway listener with `routes` (YAML items indented by 6), and what else the listener says. */
function gatewayYaml(routes: string, listenerExtra = ''): string {
  return `http:\n  - name: gw\n    listen: "127.0.0.1:0"\n${listenerExtra}    routes:\n${routes}`;
}

async function gateway(routes: string, listenerExtra = ''): Promise<{ server: SidecacheServer; base: string }> {
  const server = await startSidecache(gatewayYaml(routes, listenerExtra));
  cleanup.push(() => server.stop(100));
  return { server, base: server.httpListeners[0]!.url };
}

const get = (base: string, path: string, host: string, headers: Record<string, string> = {}) => request(`${base}${path}`, { headers: { host, ...headers } });

describe('http gateway: routes by host and path', () => {
  it('routes by exact host, wildcard host and path, first match wins, and replaces the matched prefix with the upstream path', async () => {
    const o = await origins('billing', 'users', 'tenants', 'web');
    const { base } = await gateway(
      [
        `      - { name: billing, host: api.example.com, path: "/billing/**", upstream: "${o.billing!.url}/v2" }`,
        `      - { name: users, host: api.example.com, path: /users, upstream: "${o.users!.url}" }`,
        `      - { name: tenants, host: "*.tenants.example.com", upstream: "${o.tenants!.url}/t" }`,
        `      - { name: web, path: /, upstream: "${o.web!.url}" }`,
        '',
      ].join('\n'),
    );
    expect((await get(base, '/billing/invoices/1?x=1', 'api.example.com')).body).toBe('billing /v2/invoices/1?x=1 1');
    expect((await get(base, '/users/7', 'API.example.com:80')).body).toBe('users /users/7 1');
    expect((await get(base, '/users', 'api.example.com')).body).toBe('users /users 1');
    // `/users` is a prefix of whole segments: `/usersx` falls through to the catch-all.
    expect((await get(base, '/usersx', 'api.example.com')).body).toBe('web /usersx 1');
    expect((await get(base, '/a', 'acme.tenants.example.com')).body).toBe('tenants /t/a 1');
    // Hosts do not divide a route's entries: its upstream is asked with its own Host whatever the client's.
    expect((await get(base, '/a', 'x.acme.tenants.example.com')).body).toBe('tenants /t/a 1');
    // The wildcard names the hosts below it, not itself.
    expect((await get(base, '/a', 'tenants.example.com')).body).toBe('web /a 1');
    // A path a lenient origin would read outside the route (`..%2F`) does not take it.
    expect((await get(base, '/billing/..%2Fadmin', 'api.example.com')).body).toBe('web /billing/..%2Fadmin 1');
    expect((await get(base, '/billing/a%2Fb', 'api.example.com')).body).toBe('billing /v2/a%2Fb 1');
    // Another host: only routes without a host.
    expect((await get(base, '/billing/invoices/1', 'other.example.com')).body).toBe('web /billing/invoices/1 1');
    // An absolute-form target routes by its own authority (RFC 9112 §3.2.2), not the Host field.
    const absolute = await request(`${base}/`, { path: 'http://api.example.com/billing/x', headers: { host: 'other.example.com' } });
    expect(absolute.body).toBe('billing /v2/x 1');
    expect(o.billing!.seen.every((s) => s.headers.host === new URL(o.billing!.url).host)).toBe(true);
  });

  it('keys each route apart: the same path on two routes is two entries, each a hit on its own route only', async () => {
    const o = await origins('a', 'b');
    const { base, server } = await gateway(
      [`      - { name: a, host: a.test, upstream: "${o.a!.url}" }`, `      - { name: b, host: b.test, upstream: "${o.b!.url}" }`, ''].join('\n'),
    );
    expect((await get(base, '/same', 'a.test')).body).toBe('a /same 1');
    expect((await get(base, '/same', 'b.test')).body).toBe('b /same 1');
    const hitA = await get(base, '/same', 'a.test');
    const hitB = await get(base, '/same', 'b.test');
    expect([hitA.body, hitB.body]).toEqual(['a /same 1', 'b /same 1']);
    expect([hitA.headers['cache-status'], hitB.headers['cache-status']]).toEqual([expect.stringMatching(/hit/), expect.stringMatching(/hit/)]);
    expect([o.a!.calls('/same'), o.b!.calls('/same')]).toEqual([1, 1]);
    expect(server.store.size).toBe(2);
    // The metrics carry the route.
    expect(await metric(server, 'sidecache_requests_total', { listener: 'gw', route: 'a', result: 'hit' })).toBe(1);
    expect(await metric(server, 'sidecache_requests_total', { listener: 'gw', route: 'b', result: 'miss' })).toBe(1);
    // So does the summary behind /cache and the live page.
    const summary = (await (await fetch(`${server.adminUrl}/cache`)).json()) as {
      listeners: Record<string, { routes?: Record<string, { hitRatio: number }> }>;
    };
    expect(summary.listeners.gw!.routes).toEqual({
      a: { hit: 1, miss: 1, stale: 0, bypass: 0, error: 0, hitRatio: 0.5 },
      b: { hit: 1, miss: 1, stale: 0, bypass: 0, error: 0, hitRatio: 0.5 },
    });
    // And /cache/entries names each entry's route (issue 19 point 3).
    const listed = (await (await fetch(`${server.adminUrl}/cache/entries?listener=gw`)).json()) as {
      entries: { key: { listener: string; route?: string; url: string } }[];
    };
    expect(listed.entries.map((e) => [e.key.listener, e.key.route, e.key.url]).sort()).toEqual([
      ['gw', 'a', '/same'],
      ['gw', 'b', '/same'],
    ]);
    // /cache/explain picks the route by the Host given, as a request would, and knows none for another host.
    const explain = async (host: string) =>
      (await (await fetch(`${server.adminUrl}/cache/explain?listener=gw&url=/same&header=${encodeURIComponent(`Host: ${host}`)}`)).json()) as {
        decision: string;
        reason: string;
        key?: { route?: string };
        stored?: { hits: number } | null;
      };
    expect(await explain('b.test')).toMatchObject({ decision: 'store', key: { route: 'b' }, stored: { hits: 1 } });
    expect(await explain('c.test')).toMatchObject({ decision: 'refuse', reason: expect.stringMatching(/^no-route/) as unknown });
  });

  it('gives each route its own TTLs, tag header and rules, and its own upstream pool and timeouts', async () => {
    const slow = await startOrigin(() => undefined);
    cleanup.push(() => slow.close());
    const plain = await startOrigin((req, res, n) => {
      res.writeHead(200, { 'x-tags': 'own:plain', 'surrogate-key': 'ignored' });
      res.end(`plain ${req.url} ${n}`);
    });
    cleanup.push(() => plain.close());
    const { base, server } = await gateway(
      [
        `      - name: plain`,
        `        host: p.test`,
        `        upstream: "${plain.url}"`,
        `        defaultTtl: 1m`,
        `        tagHeader: X-Tags`,
        `        rules: [{ path: "/live/**", cache: false }]`,
        `      - { name: slow, host: s.test, upstream: "${slow.url}", headersTimeout: 100ms }`,
        '',
      ].join('\n'),
    );
    await get(base, '/x', 'p.test');
    expect((await get(base, '/x', 'p.test')).body).toBe('plain /x 1');
    expect((await get(base, '/live/1', 'p.test')).headers['cache-status']).toBe('sidecache; fwd=bypass');
    const res = await fetch(`${server.adminUrl}/invalidate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"tags":["own:plain"]}',
    });
    expect(await res.json()).toEqual({ invalidated: 1 });
    // The listener's default (0) does not apply: the route's defaultTtl made /x storable.
    expect((await get(base, '/x', 'p.test')).body).toBe('plain /x 2');
    expect((await get(base, '/y', 's.test')).status).toBe(504);
  });

  it('invalidates per route (PURGE, unsafe methods, Location through the prefix) and across routes (tags, prefixes)', async () => {
    const o = await origins('a', 'b');
    const { base, server } = await gateway(
      [`      - { name: a, host: a.test, path: "/api/**", upstream: "${o.a!.url}/v1" }`, `      - { name: b, host: b.test, upstream: "${o.b!.url}" }`, ''].join(
        '\n',
      ),
    );
    const warm = async () => {
      for (const host of ['a.test', 'b.test']) for (const path of ['/api/items', '/api/items/created', '/api/other']) await get(base, path, host);
    };
    await warm();
    expect(server.store.size).toBe(6);
    // PURGE names the URL of the route it matches: b's /api/items stays.
    const purge = await request(`${base}/api/items`, { method: 'PURGE', headers: { host: 'a.test' } });
    expect(JSON.parse(purge.body)).toEqual({ purged: 1 });
    expect(server.store.size).toBe(5);
    await warm();
    // A POST on route a (sent to /v1/items): its target and the Location it answers (`items/created`,
    // relative to /v1/items, mapped back through the prefix to /api/items/created) go; route b's entries stay.
    const post = await request(`${base}/api/items`, { method: 'POST', body: 'x', headers: { host: 'a.test' } });
    expect(post.status).toBe(201);
    expect(o.a!.seen.find((s) => s.method === 'POST')?.url).toBe('/v1/items');
    expect(server.store.size).toBe(4);
    expect((await get(base, '/api/items/created', 'b.test')).headers['cache-status']).toMatch(/hit/);
    expect((await get(base, '/api/items/created', 'a.test')).headers['cache-status']).toMatch(/fwd=uri-miss/);
    await warm();
    // Tags are global: svc:a reaches route a only because only a's origin sent it; a shared tag reaches both.
    const invalidate = (body: string) =>
      fetch(`${server.adminUrl}/invalidate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body }).then((r) => r.json());
    expect(await invalidate('{"tags":["svc:a"]}')).toEqual({ invalidated: 3 });
    await warm();
    // Prefixes name client paths, on every route.
    expect(await invalidate('{"prefixes":["/api/items"]}')).toEqual({ invalidated: 4 });
  });

  it('answers 404 when no route matches, 421 for an unknown host with knownHostsOnly, 400 for a malformed or repeated Host; no upstream is asked', async () => {
    const o = await origins('a', 'b');
    const routes = [
      `      - { name: a, host: a.test, path: /api, upstream: "${o.a!.url}" }`,
      `      - { name: b, host: "*.b.test", upstream: "${o.b!.url}" }`,
      '',
    ].join('\n');
    const open = await gateway(routes);
    const strict = await gateway(routes, '    knownHostsOnly: true\n');
    const notFound = await get(open.base, '/other', 'a.test');
    expect([notFound.status, notFound.headers['cache-status']]).toEqual([404, 'sidecache; detail=NO-ROUTE']);
    expect((await get(open.base, '/api', 'unknown.test')).status).toBe(404);
    const misdirected = await get(strict.base, '/api', 'unknown.test');
    expect([misdirected.status, misdirected.headers['cache-status']]).toEqual([421, 'sidecache; detail=UNKNOWN-HOST']);
    // A known host with no matching path is still a 404.
    expect((await get(strict.base, '/other', 'a.test')).status).toBe(404);
    expect((await get(strict.base, '/api', 'x.b.test')).status).toBe(200);
    const port = new URL(open.base).port;
    const raw = (bytes: string) => rawRequest(open.base, bytes).then((answer) => answer.split('\r\n')[0]);
    expect(await raw('GET /api HTTP/1.1\r\nHost: a.test\r\nHost: a.test\r\nConnection: close\r\n\r\n')).toBe('HTTP/1.1 400 Bad Request');
    expect(await raw('GET /api HTTP/1.1\r\nHost: a.test@evil.test\r\nConnection: close\r\n\r\n')).toBe('HTTP/1.1 400 Bad Request');
    expect(await raw('GET /api HTTP/1.1\r\nHost: a.test:x\r\nConnection: close\r\n\r\n')).toBe('HTTP/1.1 400 Bad Request');
    expect(await raw(`GET /api HTTP/1.1\r\nHost: \r\nConnection: close\r\n\r\n`)).toBe('HTTP/1.1 400 Bad Request');
    // HTTP/1.0 without Host reaches only routes without a host: here none.
    expect(await raw('GET /api HTTP/1.0\r\n\r\n')).toBe('HTTP/1.1 404 Not Found');
    // PURGE and Upgrade are routed too.
    expect((await request(`${open.base}/api`, { method: 'PURGE', headers: { host: 'nowhere.test' } })).status).toBe(404);
    expect(await raw(`GET /x HTTP/1.1\r\nHost: nowhere.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`)).toBe('HTTP/1.1 404 Not Found');
    expect(await raw(`OPTIONS * HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`)).toBe('HTTP/1.1 404 Not Found');
    expect(o.a!.seen.map((s) => s.url)).toEqual([]);
    expect(o.b!.seen.map((s) => s.url)).toEqual(['/api']);
  });

  it('is refused at load when a listener has both upstream and routes, or neither', () => {
    const both = `http:\n  - { name: gw, listen: "127.0.0.1:0", upstream: "http://127.0.0.1:1", routes: [{ upstream: "http://127.0.0.1:2" }] }\n`;
    expect(() => parseConfig(both)).toThrow(/http\[0\]\.routes: expected either upstream \(one API\) or routes \(several\), not both/);
    const neither = `http:\n  - { name: gw, listen: "127.0.0.1:0" }\n`;
    expect(() => parseConfig(neither)).toThrow(/http\[0\]\.upstream: is required \(or routes\)/);
    const strict = `http:\n  - { name: gw, listen: "127.0.0.1:0", upstream: "http://127.0.0.1:1", knownHostsOnly: true }\n`;
    expect(() => parseConfig(strict)).toThrow(/http\[0\]\.knownHostsOnly: expected routes/);
    const twice = `http:\n  - { name: gw, listen: "127.0.0.1:0", routes: [{ name: a, upstream: "http://127.0.0.1:2" }, { name: a, path: /x, upstream: "http://127.0.0.1:3" }] }\n`;
    expect(() => parseConfig(twice)).toThrow(/http\[0\]\.routes\[1\]\.name: expected a unique name/);
    const badHost = `http:\n  - { name: gw, listen: "127.0.0.1:0", routes: [{ host: "a.*.test", upstream: "http://127.0.0.1:2" }] }\n`;
    expect(() => parseConfig(badHost)).toThrow(/http\[0\]\.routes\[0\]\.host: expected a host like/);
  });
});

describe('http gateway: reload', () => {
  it('adds, changes and removes routes on a running listener, keeping client connections; a removed route loses its entries', async () => {
    const o = await origins('a', 'b', 'c');
    const route = (name: string, url: string, extra = '') => `      - { name: ${name}, host: ${name}.test, upstream: "${url}"${extra} }\n`;
    const server = await startSidecache(gatewayYaml(route('a', o.a!.url) + route('b', o.b!.url)));
    cleanup.push(() => server.stop(100));
    const base = server.httpListeners[0]!.url;
    const { Agent } = await import('node:http');
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    cleanup.push(async () => agent.destroy());
    const sockets = new Set<unknown>();
    const viaAgent = async (path: string, host: string) => {
      const res = await request(`${base}${path}`, { headers: { host }, agent });
      return res;
    };
    agent.on('free', (socket) => sockets.add(socket));
    await viaAgent('/x', 'a.test');
    await viaAgent('/x', 'b.test');
    await viaAgent('/y', 'b.test');
    expect(server.store.size).toBe(3);
    const admin = 'admin: { listen: "127.0.0.1:0" }\n';
    // b removed, c added, a's TTL changed (in place: its entry stays).
    const next = parseConfig(admin + gatewayYaml(route('a', o.a!.url, ', defaultTtl: 5m') + route('c', o.c!.url)));
    expect(await server.reload(next)).toEqual({ applied: ['http[gw]'], needsRestart: [] });
    expect(server.store.size).toBe(1);
    expect((await viaAgent('/x', 'a.test')).headers['cache-status']).toMatch(/hit/);
    expect((await viaAgent('/x', 'b.test')).status).toBe(404);
    expect((await viaAgent('/x', 'c.test')).body).toBe('c /x 1');
    // One client connection all along.
    expect(sockets.size).toBe(1);
    // a moved to another upstream: its entries go with the old one, the new one is asked.
    const moved = parseConfig(admin + gatewayYaml(route('a', o.b!.url) + route('c', o.c!.url)));
    await server.reload(moved);
    expect((await viaAgent('/x', 'a.test')).body).toBe('b /x 2');
    expect(sockets.size).toBe(1);
    // Turning the gateway into a listener with one upstream builds other pools: that waits for a restart.
    const single = parseConfig(`${admin}http:\n  - { name: gw, listen: "127.0.0.1:0", upstream: "${o.a!.url}" }\n`);
    expect((await server.reload(single)).needsRestart).toEqual(['http[gw].upstream']);
    expect((await viaAgent('/x', 'c.test')).body).toBe('c /x 1');
  });
});
