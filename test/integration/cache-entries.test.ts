/** Issue 18 point 2: GET /cache/entries and GET /cache/explain?url=, against real servers. */
import { afterEach, describe, expect, it } from 'vitest';
import { counting, useHttpSetup } from '../helpers/http-setup.js';
import { connect, PG, pgUnreachable, unique } from '../helpers/pg.js';
import { rawRequest } from '../helpers/raw-http.js';
import { startSidecache } from '../helpers/sidecache.js';

const setup = useHttpSetup();
const pgDown = await pgUnreachable();
const TOKEN = 'issue18-token';
const SECRET = 'sekr3t-issue18';
const WITH_TOKEN = `admin: { listen: "127.0.0.1:0", token: "${TOKEN}" }\n`;
const auth = { authorization: `Bearer ${TOKEN}` };
const stops: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

interface Listing {
  total: number;
  matched: number;
  entries: { key: Record<string, unknown>; tags: string[]; bytes: number; ageSeconds: number; ttlSeconds: number; hits: number }[];
}

async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, { headers });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('GET /cache/entries (HTTP)', () => {
  it('lists entries by hits with URL, tags, bytes, age, TTL left and hits; the query is hidden without reveal', async () => {
    const { server, base } = await setup(counting('max-age=60'), '    rules:\n      - { path: "/users/**", tags: ["users"] }\n', WITH_TOKEN);
    for (const path of ['/users/1?token=' + SECRET, '/users/1?token=' + SECRET, '/users/1?token=' + SECRET, '/other']) await (await fetch(base + path)).text();
    const { status, body } = await get(`${server.adminUrl}/cache/entries`, auth);
    expect(status).toBe(200);
    const listing = body as unknown as Listing;
    expect(listing.total).toBe(2);
    expect(listing.entries.map((e) => [e.key.url, e.key.queryHidden, e.hits])).toEqual([
      ['/users/1', true, 2],
      ['/other', undefined, 0],
    ]);
    const [users] = listing.entries;
    expect(users!.key).toMatchObject({ protocol: 'http', listener: 'api' });
    expect(users!.tags).toEqual(expect.arrayContaining(['users', 'path:/users/', 'url:api /users/1']));
    expect(users!.ttlSeconds).toBeGreaterThan(50);
    expect(users!.bytes).toBeGreaterThan(0);
    expect(JSON.stringify(body)).not.toContain(SECRET);

    const revealed = (await get(`${server.adminUrl}/cache/entries?reveal=1&sort=bytes`, auth)).body as unknown as Listing;
    expect(revealed.entries.map((e) => e.key.url)).toContain(`/users/1?token=${SECRET}`);
  });

  it('filters by protocol, listener, prefix and tag, sorts by bytes and age, and bounds limit', async () => {
    const { server, base } = await setup((req, res) => {
      res.writeHead(200, { 'cache-control': 'max-age=60', 'surrogate-key': req.url!.startsWith('/big') ? 'big' : 'small' });
      res.end(req.url!.startsWith('/big') ? 'x'.repeat(5000) : 'x');
    });
    for (const path of ['/small/1', '/big/1', '/small/2']) await (await fetch(base + path)).text();
    const urls = async (query: string) => ((await get(`${server.adminUrl}/cache/entries?${query}`)).body as unknown as Listing).entries.map((e) => e.key.url);
    expect(await urls('sort=bytes&limit=1')).toEqual(['/big/1']);
    expect(await urls('sort=age')).toHaveLength(3);
    expect((await urls('prefix=/small/')).sort()).toEqual(['/small/1', '/small/2']);
    expect(await urls('tag=big')).toEqual(['/big/1']);
    expect(await urls('protocol=postgres')).toEqual([]);
    expect(await urls('listener=other')).toEqual([]);
    expect((await get(`${server.adminUrl}/cache/entries?limit=1001`)).status).toBe(400);
    expect((await get(`${server.adminUrl}/cache/entries?limit=0`)).status).toBe(400);
    expect((await get(`${server.adminUrl}/cache/entries?sort=name`)).status).toBe(400);
  });

  it('needs the token when one is set; reveal needs a token configured; a hidden query cannot be guessed through prefix or tag', async () => {
    const open = await setup(counting());
    await (await fetch(`${open.base}/p?k=${SECRET}`)).text();
    // No token set: reveal is refused, and filters match what is shown, not what is hidden.
    expect((await get(`${open.server.adminUrl}/cache/entries?reveal=1`)).status).toBe(403);
    const guess = (await get(`${open.server.adminUrl}/cache/entries?prefix=${encodeURIComponent('/p?k=sekr')}`)).body as unknown as Listing;
    expect(guess.matched).toBe(0);
    const tagGuess = (await get(`${open.server.adminUrl}/cache/entries?tag=${encodeURIComponent(`url:api /p?k=${SECRET}`)}`)).body as unknown as Listing;
    expect(tagGuess.matched).toBe(0);
    // A page on another site (DNS rebinding) cannot read it either.
    const rebound = await rawRequest(open.server.adminUrl, 'GET /cache/entries HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n');
    expect(rebound).toMatch(/^HTTP\/1\.1 403 /);

    const guarded = await setup(counting(), '', WITH_TOKEN);
    expect((await get(`${guarded.server.adminUrl}/cache/entries`)).status).toBe(401);
    expect((await get(`${guarded.server.adminUrl}/cache/entries?reveal=1`, { authorization: 'Bearer wrong' })).status).toBe(401);
  });
});

describe('GET /cache/explain?url= (HTTP)', () => {
  it('says which rule matches, the storage decision and why, the key, and whether an entry answers now', async () => {
    const rules = '    defaultTtl: 30s\n    rules:\n      - { path: "/private/**", cache: false }\n      - { path: "/users/*", ttl: 5m, tags: ["users"] }\n';
    const { server, base } = await setup(counting('max-age=60'), rules, WITH_TOKEN);
    const explain = async (query: string) => (await get(`${server.adminUrl}/cache/explain?listener=api&${query}`, auth)).body;

    const users = await explain(`url=${encodeURIComponent(`/users/1?q=${SECRET}`)}`);
    expect(users).toMatchObject({ listener: 'api', url: '/users/1', queryHidden: true, method: 'GET', decision: 'store', ttlMs: 300_000, stored: null });
    expect(users.rule).toEqual({ index: 1, path: '/users/*', ttlMs: 300_000, cache: true, tags: ['users'] });
    expect(users.key).toMatchObject({ protocol: 'http', listener: 'api', url: '/users/1' });
    expect(JSON.stringify(users)).not.toContain(SECRET);

    expect(await explain('url=/private/me')).toMatchObject({ decision: 'pass', rule: { index: 0, cache: false } });
    // Default deny: the lenient spellings fall under the cache: false rule too.
    expect(await explain('url=/PRIVATE/me')).toMatchObject({ decision: 'pass' });
    expect(await explain('url=/users/1&method=POST')).toMatchObject({ decision: 'pass' });
    expect(String((await explain('url=/users/1&method=PURGE')).reason)).toContain('PURGE removes');
    const other = await explain('url=/other');
    expect(other).toMatchObject({ rule: null, decision: 'store', ttlMs: 30_000 });
    expect(String(other.reason)).toContain('defaultTtl');
    expect(await explain('url=nope')).toMatchObject({ decision: 'refuse' });

    await (await fetch(`${base}/users/1?q=${SECRET}`)).text();
    const stored = await explain(`url=${encodeURIComponent(`/users/1?q=${SECRET}`)}&reveal=1`);
    expect(stored).toMatchObject({ url: `/users/1?q=${SECRET}`, stored: { hits: 0 } });
    expect((stored.stored as { ttlSeconds: number }).ttlSeconds).toBeGreaterThan(200);
    expect((await get(`${server.adminUrl}/cache/explain?listener=nope&url=/`, auth)).status).toBe(404);
    expect((await get(`${server.adminUrl}/cache/explain?listener=api&url=/`)).status).toBe(401);
  });

  it('a Vary response: the key names the fields, with their values only with reveal', async () => {
    const { server, base } = await setup(
      (_req, res) => {
        res.writeHead(200, { 'cache-control': 'max-age=60', vary: 'Accept' });
        res.end('v');
      },
      '',
      WITH_TOKEN,
    );
    await (await fetch(`${base}/v`, { headers: { accept: 'application/json' } })).text();
    const explain = async (reveal: string) =>
      (await get(`${server.adminUrl}/cache/explain?listener=api&url=/v&header=${encodeURIComponent('Accept: application/json')}${reveal}`, auth)).body;
    expect((await explain('')).key).toMatchObject({ vary: ['accept'] });
    expect(await explain('&reveal=1')).toMatchObject({ key: { vary: { accept: 'application/json' } }, stored: { hits: 0 } });
  });
});

describe.skipIf(pgDown !== undefined)('GET /cache/entries (PostgreSQL)', () => {
  it('shows SQL with literals as ? and bind values as a count, the session facts, and both verbatim with reveal', async () => {
    const table = unique('entries');
    const direct = await connect(undefined);
    stops.push(async () => {
      await direct.query(`DROP TABLE IF EXISTS ${table}`);
      await direct.end();
    });
    await direct.query(`CREATE TABLE ${table} (id int, v text); INSERT INTO ${table} VALUES (1, 'a')`);
    const server = await startSidecache(
      `${WITH_TOKEN}postgres:\n  - { name: main, listen: "127.0.0.1:0", upstream: "postgres://${PG.host}:${PG.port}?sslmode=disable" }\n`,
      {
        planWaitMs: 10_000,
      },
    );
    stops.push(() => server.stop(100));
    const client = await connect(server.postgresListeners[0]!.address.port);
    stops.push(() => client.end());
    await client.query(`SET search_path = public`);
    await client.query(`SELECT v /* ${SECRET} */ FROM ${table} WHERE v <> '${SECRET}' AND id < 10`);
    await client.query(`SELECT v FROM ${table} WHERE v <> $1`, [SECRET]);
    const listing = (await get(`${server.adminUrl}/cache/entries?protocol=postgres`, auth)).body as unknown as Listing;
    expect(listing.entries).toHaveLength(2);
    const simple = listing.entries.find((e) => e.key.kind === 'simple')!;
    const extended = listing.entries.find((e) => e.key.kind === 'extended')!;
    expect(simple.key).toMatchObject({
      protocol: 'postgres',
      listener: 'main',
      database: PG.database,
      user: PG.user,
      sql: `SELECT v FROM ${table} WHERE v <> ? AND id < ?`,
    });
    expect((simple.key.session as Record<string, string>).search_path).toBe('public');
    expect(extended.key).toMatchObject({ sql: `SELECT v FROM ${table} WHERE v <> $1`, parameters: 1 });
    expect(simple.tags).toEqual(expect.arrayContaining([`table:${table}`, `pgdb:${PG.database}`]));
    expect(JSON.stringify(listing)).not.toContain(SECRET);

    const revealed = (await get(`${server.adminUrl}/cache/entries?protocol=postgres&reveal=1`, auth)).body as unknown as Listing;
    expect(revealed.entries.find((e) => e.key.kind === 'extended')!.key.parameters).toEqual([SECRET]);
    expect(revealed.entries.find((e) => e.key.kind === 'simple')!.key.sql).toContain(`'${SECRET}'`);
    const byPrefix = (await get(`${server.adminUrl}/cache/entries?prefix=${encodeURIComponent(`SELECT v FROM ${table} WHERE v <> ?`)}`, auth))
      .body as unknown as Listing;
    expect(byPrefix.matched).toBe(1);
  });
});
