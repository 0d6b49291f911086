/**
 * Issue 17 on a fleet whose only bus is postgres-wal: each replica publishes its own invalidations
 * as logical decoding messages (`pg_logical_emit_message`, prefix `sidecache`) and every replica's
 * replication stream hands them over, so an invalidation decided on A (POST /invalidate, an unsafe
 * method, PURGE) leaves no stale entry on B. Each replica streams from its own temporary slot of a
 * throwaway wal_level=logical cluster.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import type { SidecacheServer } from '../../src/server.js';
import { checkConnect } from '../../src/upstreams/postgres/check-connect.js';
import { type Origin, startOrigin } from '../helpers/origin.js';
import { clusterUnavailable, type PgCluster, useCluster } from '../helpers/pg-cluster.js';
import { httpListenerYaml, metric, startSidecache } from '../helpers/sidecache.js';
import { waitFor } from '../helpers/wait.js';

const noCluster = clusterUnavailable() !== undefined;
const JSON_TYPE = { 'content-type': 'application/json' };
const bus = 'postgres-wal:sidecache';

describe.skipIf(noCluster)('postgres-wal bus: replicas publish their invalidations as logical decoding messages', () => {
  const cluster: PgCluster = useCluster({ auth: 'trust', conf: ['wal_level = logical', 'max_replication_slots = 10', 'max_wal_senders = 10'] });
  let origin: Origin;
  let a: SidecacheServer;
  let b: SidecacheServer;
  let direct: pg.Client;

  const replica = (user = 'postgres') =>
    startSidecache(
      `${httpListenerYaml(origin.url)}invalidation:\n  - { type: postgres-wal, url: "postgres://${user}@127.0.0.1:${cluster.port}/postgres", heartbeat: 200ms, maxMessageBytes: 1KiB }\n`,
    );
  const get = async (s: SidecacheServer, path: string) => {
    const res = await fetch(`${s.httpListeners[0]!.url}${path}`);
    return { status: res.headers.get('cache-status') ?? '', body: await res.text() };
  };
  /** `path` read twice through B: the second read is a hit. */
  const cachedOnB = async (path: string) => {
    await get(b, path);
    const cached = await get(b, path);
    expect(cached.status).toMatch(/hit/);
    return cached;
  };
  const applied = (s: SidecacheServer) => metric(s, 'sidecache_invalidations_total', { source: bus });
  const refused = (s: SidecacheServer) => metric(s, 'sidecache_invalidation_errors_total', { source: bus });
  const emit = (transactional: boolean, prefix: string, payload: string) =>
    direct.query('SELECT pg_logical_emit_message($1, $2, $3::bytea)', [transactional, prefix, Buffer.from(payload)]);
  /** Waits until B applied a sidecache message emitted after everything before: whatever came earlier was handed over by then. */
  const settled = async () => {
    const before = await applied(b);
    await emit(false, 'sidecache', '{"tags":["marker"]}');
    await waitFor(async () => (await applied(b)) > before, 'the marker message at B');
  };

  beforeAll(async () => {
    origin = await startOrigin((req, res, n) => {
      if (req.method !== 'GET') return void res.writeHead(204).end();
      res.writeHead(200, { 'cache-control': 'max-age=600', 'surrogate-key': 'shared' });
      res.end(`call ${n}`);
    });
    await cluster.admin('CREATE PUBLICATION sidecache FOR ALL TABLES');
    direct = new pg.Client({ host: '127.0.0.1', port: cluster.port, user: 'postgres', database: 'postgres' });
    await direct.connect();
    [a, b] = await Promise.all([replica(), replica()]);
    expect([await metric(a, 'sidecache_bus_connected', { bus }), await metric(b, 'sidecache_bus_connected', { bus })]).toEqual([1, 1]);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([a?.stop(100), b?.stop(100)]);
    await direct?.end();
    await origin?.close();
  });

  it("POST /invalidate on A drops B's entry; A's own message comes back to A as an echo, skipped", async () => {
    const cached = await cachedOnB('/items');
    const before = await applied(b);
    const echoes = await metric(a, 'sidecache_bus_echoes_total', { bus });
    const res = await fetch(`${a.adminUrl}/invalidate`, { method: 'POST', body: '{"tags":["shared"]}', headers: JSON_TYPE });
    expect(res.status).toBe(200);
    expect(await metric(a, 'sidecache_bus_publishes_total', { bus, result: 'sent' })).toBe(1);
    await waitFor(async () => (await applied(b)) > before, "A's message at B");
    const fresh = await get(b, '/items');
    expect(fresh.status).toMatch(/fwd=uri-miss/);
    expect(fresh.body).not.toBe(cached.body);
    await waitFor(async () => (await metric(a, 'sidecache_bus_echoes_total', { bus })) > echoes, 'the echo at A');
    expect(await metric(b, 'sidecache_bus_echoes_total', { bus })).toBe(0);
  });

  it("an unsafe method through A's HTTP listener (RFC 9111 §4.4) and a PURGE on A reach B", async () => {
    await cachedOnB('/items');
    const before = await applied(b);
    expect((await fetch(`${a.httpListeners[0]!.url}/items`, { method: 'POST', body: 'x' })).status).toBe(204);
    await waitFor(async () => (await applied(b)) > before, "A's POST at B");
    expect((await get(b, '/items')).status).toMatch(/fwd=uri-miss/);
    await cachedOnB('/items');
    const next = await applied(b);
    expect((await fetch(`${a.httpListeners[0]!.url}/items`, { method: 'PURGE' })).status).toBeLessThan(300);
    await waitFor(async () => (await applied(b)) > next, "A's PURGE at B");
    expect((await get(b, '/items')).status).toMatch(/fwd=uri-miss/);
  });

  it('an invalidation larger than maxMessageBytes is split into messages that fit, and B applies every one', async () => {
    const tags = Array.from({ length: 120 }, (_v, i) => `user:${1000 + i}`);
    for (const tag of tags) b.store.set(`k:${tag}`, { body: Buffer.from('x'), ttlMs: 60_000, tags: [tag] });
    const errors = await refused(b);
    const res = await fetch(`${a.adminUrl}/invalidate`, { method: 'POST', body: JSON.stringify({ tags }), headers: JSON_TYPE });
    expect(res.status).toBe(200);
    await waitFor(() => tags.every((tag) => !b.store.has(`k:${tag}`)), "every tag of A's split message gone at B");
    expect(await refused(b)).toBe(errors);
  });

  it('messages with another prefix, and a transactional one rolled back, are ignored; a transactional one committed applies', async () => {
    b.store.set('k:kept', { body: Buffer.from('x'), ttlMs: 60_000, tags: ['user:1'] });
    const errors = await refused(b);
    await emit(false, 'other', '{"all":true}');
    await emit(true, 'sidecachex', '{"all":true}');
    await direct.query('BEGIN');
    await emit(true, 'sidecache', '{"all":true}');
    await direct.query('ROLLBACK');
    await settled();
    expect(b.store.has('k:kept')).toBe(true);
    expect(await refused(b)).toBe(errors);
    await direct.query('BEGIN');
    await emit(true, 'sidecache', '{"tags":["user:1"]}');
    await direct.query('COMMIT');
    await waitFor(() => !b.store.has('k:kept'), 'the committed transactional message at B');
  });

  it('a message larger than maxMessageBytes is refused and counted, and the bus keeps streaming', async () => {
    b.store.set('k:big', { body: Buffer.from('x'), ttlMs: 60_000, tags: ['user:2'] });
    const errors = await refused(b);
    await emit(false, 'sidecache', JSON.stringify({ tags: ['user:2', 'x'.repeat(2048)] }));
    await waitFor(async () => (await refused(b)) === errors + 1, 'the oversize message to be refused');
    expect(b.store.has('k:big')).toBe(true);
    expect(await metric(b, 'sidecache_bus_connected', { bus })).toBe(1);
    await emit(false, 'sidecache', '{"tags":["user:2"]}');
    await waitFor(() => !b.store.has('k:big'), 'the next message to apply');
  });

  it('a payload that is not a message of the contract (bytes that are not JSON) is refused and counted, never applied', async () => {
    b.store.set('k:odd', { body: Buffer.from('x'), ttlMs: 60_000, tags: ['user:3'] });
    const errors = await refused(b);
    await direct.query(`SELECT pg_logical_emit_message(false, 'sidecache', '\\x7bff00'::bytea)`);
    await waitFor(async () => (await refused(b)) === errors + 1, 'the unreadable message to be refused');
    expect(b.store.has('k:odd')).toBe(true);
  });

  it('check --connect: pg_logical_emit_message is executable by PUBLIC by default; once revoked, check names the GRANT', async () => {
    const check = async (user: string) => {
      const config = parseConfig(`invalidation:\n  - { type: postgres-wal, url: "postgres://${user}@127.0.0.1:${cluster.port}/postgres" }\n`, 'check.yaml', {});
      const lines: string[] = [];
      const ok = await checkConnect([], {}, (line) => lines.push(line), config.invalidation);
      return { ok, out: lines.join('\n') };
    };
    await cluster.admin('CREATE ROLE walpub LOGIN REPLICATION');
    // 17 added a fourth argument (flush): the bytea variant's own signature, as the check prints it.
    const [result] = await cluster.admin(
      `SELECT oid::regprocedure::text AS s FROM pg_proc WHERE proname = 'pg_logical_emit_message' AND proargtypes[2] = 'bytea'::regtype`,
    );
    const signature = result!.rows[0].s as string;
    try {
      const allowed = await check('walpub');
      expect(allowed.out).toContain('publish: may emit logical decoding messages');
      expect(allowed.ok).toBe(true);
      await cluster.admin(`REVOKE EXECUTE ON FUNCTION ${signature} FROM PUBLIC`);
      const denied = await check('walpub');
      expect(denied.ok).toBe(false);
      expect(denied.out).toContain(`GRANT EXECUTE ON FUNCTION pg_catalog.${signature} TO "walpub";`);
      const config = parseConfig(
        `invalidation:\n  - { type: postgres-wal, url: "postgres://walpub@127.0.0.1:${cluster.port}/postgres", publish: false }\n`,
        'check.yaml',
        {},
      );
      expect(await checkConnect([], {}, () => undefined, config.invalidation)).toBe(true);
    } finally {
      await cluster.admin(`GRANT EXECUTE ON FUNCTION ${signature} TO PUBLIC; DROP ROLE walpub`);
    }
  });

  it('a role that may not execute pg_logical_emit_message: the publish fails, waits in the outbox, and goes out once granted; stop closes the publishing connection', async () => {
    const [result] = await cluster.admin(
      `SELECT oid::regprocedure::text AS s FROM pg_proc WHERE proname = 'pg_logical_emit_message' AND proargtypes[2] = 'bytea'::regtype`,
    );
    const signature = result!.rows[0].s as string;
    await cluster.admin(`CREATE ROLE walpub2 LOGIN REPLICATION; REVOKE EXECUTE ON FUNCTION ${signature} FROM PUBLIC`);
    const c = await replica('walpub2');
    try {
      expect(await metric(c, 'sidecache_bus_connected', { bus })).toBe(1);
      b.store.set('k:late', { body: Buffer.from('x'), ttlMs: 60_000, tags: ['user:4'] });
      const res = await fetch(`${c.adminUrl}/invalidate`, { method: 'POST', body: '{"tags":["user:4"]}', headers: JSON_TYPE });
      expect(res.status).toBe(200);
      expect(await metric(c, 'sidecache_bus_publishes_total', { bus, result: 'failed' })).toBe(1);
      expect(await metric(c, 'sidecache_bus_outbox_names', { bus })).toBe(1);
      await settled();
      expect(b.store.has('k:late')).toBe(true);
      await cluster.admin(`GRANT EXECUTE ON FUNCTION ${signature} TO walpub2`);
      await waitFor(() => !b.store.has('k:late'), "C's outbox at B once C may emit");
      expect(await metric(c, 'sidecache_bus_outbox_names', { bus })).toBe(0);
    } finally {
      await c.stop(1000);
    }
    const publishers = async () => (await cluster.admin(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = 'walpub2'`))[0]!.rows[0].n as number;
    await waitFor(async () => (await publishers()) === 0, "C's connections to close");
    await cluster.admin(`GRANT EXECUTE ON FUNCTION ${signature} TO PUBLIC; DROP OWNED BY walpub2; DROP ROLE walpub2`);
  });
});
