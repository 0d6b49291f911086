/**
 * Issue 15: keys carry a digest of the session's settings instead of their text. Sessions alike
 * still share entries; sessions that differ in any one setting (search_path, TimeZone, a GUC the
 * server does not report, a custom setting, the role) never do, and each listing shows its
 * settings under its own digest.
 */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SidecacheServer } from '../../../src/server.js';
import { connect, PG, pgUnreachable, startPgSidecache, unique } from '../../helpers/pg.js';
import { metric } from '../../helpers/sidecache.js';
import { waitFor } from '../../helpers/wait.js';

const unreachable = await pgUnreachable();

describe.skipIf(unreachable !== undefined)('postgres listener: session digest in the key (15)', () => {
  let server: SidecacheServer;
  let port: number;
  let direct: pg.Client;
  const clients: pg.Client[] = [];
  const table = unique('digest');
  const role = unique('digest_role');
  const sql = `SELECT v FROM ${table} WHERE id = 1`;
  const hits = () => metric(server, 'sidecache_requests_total', { protocol: 'postgres', listener: 'main', result: 'hit' });

  /** A new session through sidecache that ran `settings` first, each its own request. */
  const session = async (settings: string[]) => {
    const c = await connect(port);
    clients.push(c);
    for (const s of settings) await c.query(s);
    return c;
  };
  /** Whether running the statement in `c` was answered from the cache. */
  const hit = async (c: pg.Client) => {
    const before = await hits();
    expect((await c.query(sql)).rows).toEqual([{ v: 'one' }]);
    return (await hits()) > before;
  };

  beforeAll(async () => {
    ({ server, port } = await startPgSidecache());
    direct = await connect(undefined);
    await direct.query(`CREATE TABLE ${table} (id int PRIMARY KEY, v text); INSERT INTO ${table} VALUES (1, 'one');
      CREATE ROLE ${role}; GRANT SELECT ON ${table} TO ${role}`);
  });
  afterAll(async () => {
    for (const c of clients) await c.end().catch(() => undefined);
    await server?.stop(100);
    await direct?.query(`DROP TABLE IF EXISTS ${table}; DROP ROLE IF EXISTS ${role}`);
    await direct?.end();
  });

  it('sessions with the same settings share entries; one differing in any setting gets its own', async () => {
    const base = ['SET search_path = public, pg_catalog', "SET TimeZone = 'UTC'", "SET work_mem = '4MB'", "SET myapp.tenant = 'a'"];
    const first = await session(base);
    // The first use of a SQL text may go upstream while its plan is worked out; then it is stored and hits.
    await waitFor(() => hit(first), 'a hit for the first session');
    expect(await hit(await session(base)), 'a session with the same settings').toBe(true);

    const variants = [
      ['SET search_path = public'],
      ["SET TimeZone = 'Europe/Paris'"],
      ["SET work_mem = '8MB'"],
      ["SET myapp.tenant = 'b'"],
      [`SET ROLE ${role}`],
    ];
    for (const extra of variants) {
      const c = await session([...base, ...extra]);
      expect(await hit(c), `first run after ${extra[0]}`).toBe(false);
      // Its own entry: the variant's second run hits it.
      expect(await hit(c), `second run after ${extra[0]}`).toBe(true);
    }

    const { entries } = await server.entries({ protocol: 'postgres', sort: 'hits', limit: 100, reveal: true });
    const ours = entries.filter((e) => e.key.sql === sql).map((e) => e.key as unknown as { sessionDigest: string; session: Record<string, string> });
    expect(ours).toHaveLength(1 + variants.length);
    expect(new Set(ours.map((k) => k.sessionDigest)).size).toBe(1 + variants.length);
    expect(ours.map((k) => k.session['myapp.tenant']).sort()).toEqual(['a', 'a', 'a', 'a', 'a', 'b']);
    expect(ours.map((k) => k.session.TimeZone)).toContain('Europe/Paris');
    expect(ours.every((k) => k.sessionDigest.length < 40 && k.session.user === PG.user)).toBe(true);
  });
});
