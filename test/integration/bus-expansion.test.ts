/**
 * Issue 17 point 4: a table a bus message names is expanded through the catalog, like a write seen
 * on the wire: naming a partition drops reads of its parent and of a view over it, naming the
 * parent drops reads of a partition queried directly (and of a view over that partition).
 */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SidecacheServer } from '../../src/server.js';
import { connect, PG, pgUnreachable, unique } from '../helpers/pg.js';
import { metric, startSidecache } from '../helpers/sidecache.js';
import { waitFor } from '../helpers/wait.js';

const unreachable = await pgUnreachable();

describe.skipIf(unreachable !== undefined)('bus messages are expanded to partitions, parents and views', () => {
  const schema = unique('expand');
  const channel = unique('chan');
  const bus = `postgres:${channel}`;
  let direct: pg.Client;
  let server: SidecacheServer;
  let via: pg.Client;

  beforeAll(async () => {
    direct = await connect(undefined);
    await direct.query(`CREATE SCHEMA ${schema};
      CREATE TABLE ${schema}.p (k int, v text) PARTITION BY RANGE (k);
      CREATE TABLE ${schema}.p_1 PARTITION OF ${schema}.p FOR VALUES FROM (0) TO (100);
      CREATE VIEW ${schema}.p_v AS SELECT k, v FROM ${schema}.p;
      CREATE VIEW ${schema}.p1_v AS SELECT k, v FROM ${schema}.p_1;
      INSERT INTO ${schema}.p VALUES (1, 'one')`);
    server = await startSidecache(
      `postgres:\n  - { name: main, listen: "127.0.0.1:0", upstream: "postgres://${PG.host}:${PG.port}?sslmode=disable" }\n` +
        `invalidation:\n  - { type: postgres, url: "postgres://${PG.user}@${PG.host}:${PG.port}/${PG.database}", channel: ${channel} }\n`,
      { planWaitMs: 10_000 },
    );
    via = await connect(server.postgresListeners[0]!.address.port);
  });
  afterAll(async () => {
    await via?.end();
    await server?.stop(100);
    await direct.query(`DROP SCHEMA ${schema} CASCADE`);
    await direct.end();
  });

  const hits = () => metric(server, 'sidecache_requests_total', { protocol: 'postgres', listener: 'main', result: 'hit' });
  const key = (relation: string) => `SELECT v FROM ${schema}.${relation} WHERE k = 1`;
  /** Reads each relation twice: the second read must be a hit. */
  const cache = async (...relations: string[]) => {
    for (const relation of relations) {
      await via.query(key(relation));
      const before = await hits();
      await via.query(key(relation));
      expect(await hits(), `${relation} is cached`).toBe(before + 1);
    }
  };
  /** Whether a read of `relation` is answered from the cache now. */
  const isCached = async (relation: string) => {
    const before = await hits();
    await via.query(key(relation));
    return (await hits()) === before + 1;
  };
  const notify = async (payload: string) => {
    const before = await metric(server, 'sidecache_invalidations_total', { source: bus });
    await direct.query('SELECT pg_notify($1, $2)', [channel, payload]);
    await waitFor(async () => (await metric(server, 'sidecache_invalidations_total', { source: bus })) === before + 1, 'the message to be applied');
  };

  it('naming a partition drops reads of its parent and of a view over the parent', async () => {
    await cache('p', 'p_v');
    await notify('p_1');
    await waitFor(async () => !(await isCached('p')) && !(await isCached('p_v')), 'the parent and its view to be dropped');
  });

  it('naming the parent drops reads of a partition queried directly, and of a view over the partition', async () => {
    await cache('p_1', 'p1_v');
    await notify(`{"tables":["${schema}.p"]}`);
    await waitFor(async () => (await metric(server, 'sidecache_invalidations_total', { source: `${bus} expansion` })) >= 1, 'the expansion to be applied');
    expect(await isCached('p_1')).toBe(false);
    expect(await isCached('p1_v')).toBe(false);
  });
});
