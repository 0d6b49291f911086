import { describe, expect, it, onTestFinished } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { Logger } from '../../../src/log.js';
import { Catalog } from '../../../src/upstreams/postgres/catalog.js';
import { DirectCatalog } from '../../../src/upstreams/postgres/catalog-direct.js';
import { loadParser } from '../../../src/upstreams/postgres/classify.js';
import { Planner } from '../../../src/upstreams/postgres/planner.js';
import type { BuiltinFunctions } from '../../../src/upstreams/postgres/volatility.js';
import { sample } from '../../helpers/sidecache.js';
import { connect, PG, pgUnreachable, unique, withPgSidecache } from '../../helpers/pg.js';

const unreachable = await pgUnreachable();

/** A real catalog on the test server that counts how often it reads the built-ins. */
class CountingCatalog extends Catalog {
  loads: string[] = [];

  override builtins(database: string, user: string): Promise<BuiltinFunctions> {
    this.loads.push(database);
    return super.builtins(database, user);
  }
}

function plannerWithCatalog(): { planner: Planner; catalog: CountingCatalog } {
  const config = parseConfig(`postgres:\n  - { name: main, listen: "127.0.0.1:0", upstream: "postgres://${PG.host}:${PG.port}" }\n`, 'test.yaml', {})
    .postgres[0]!;
  const catalog = new CountingCatalog(
    new DirectCatalog((database, user) => ({ host: PG.host, port: PG.port, user, database }), new Logger({ level: 'silent' })),
  );
  onTestFinished(() => catalog.close());
  return { planner: new Planner(config, catalog), catalog };
}

describe.skipIf(unreachable !== undefined)("function volatility from the database's own pg_proc", () => {
  it('caches a statement whose calls are all IMMUTABLE built-ins: a hit on the second run', async () => {
    await withPgSidecache(async (port, server) => {
      const via = await connect(port);
      try {
        const count = async (result: string) =>
          sample(await (await fetch(`${server.adminUrl}/metrics`)).text(), 'sidecache_requests_total', { protocol: 'postgres', listener: 'main', result });
        const sql = "SELECT abs(-5) AS a, lower('ABC') AS l, md5('x') AS m, length('abc') AS n, round(2.5) AS r";
        const rows = [{ a: 5, l: 'abc', m: '9dd4e461268c8034f5c8564e155c67a6', n: 3, r: '3' }];
        expect((await via.query(sql)).rows).toEqual(rows);
        expect([await count('hit'), await count('miss')]).toEqual([0, 1]);
        expect((await via.query(sql)).rows).toEqual(rows);
        expect([await count('hit'), await count('miss')]).toEqual([1, 1]);
      } finally {
        await via.end();
      }
    });
  });

  it('does not cache volatile or stable built-ins, and says which', async () => {
    const { planner } = plannerWithCatalog();
    await loadParser();
    const seq = unique('seq');
    for (const [sql, fn] of [
      ['SELECT now()', 'now'],
      ['SELECT random()', 'random'],
      [`SELECT nextval('${seq}')`, 'nextval'],
      ['SELECT clock_timestamp()', 'clock_timestamp'],
      ["SELECT concat('a', 'b')", 'concat'],
      ["SELECT to_char(1, '9')", 'to_char'],
    ]) {
      expect(await planner.plan(PG.database, PG.user, sql!)).toMatchObject({ cacheable: false, reason: `calls ${fn}, which is not IMMUTABLE` });
    }
  });

  it('reads the built-ins once per database and answers later statements without waiting, DDL or not', async () => {
    const { planner, catalog } = plannerWithCatalog();
    await loadParser();
    expect(await planner.plan(PG.database, PG.user, 'SELECT abs($1::int)')).toMatchObject({ cacheable: true });
    expect(await planner.plan(PG.database, PG.user, 'SELECT lower($1::text), upper($1::text)')).toMatchObject({ cacheable: true });
    expect(planner.peek(PG.database, PG.user, "SELECT md5('y')")).toMatchObject({ cacheable: true });
    expect(planner.peek(PG.database, PG.user, 'SELECT random()')).toMatchObject({ cacheable: false });
    expect(catalog.loads).toEqual([PG.database]);
    // Another database has a catalog of its own.
    expect(await planner.plan('postgres', PG.user, 'SELECT abs($1::int)')).toMatchObject({ cacheable: true });
    expect(catalog.loads).toEqual([PG.database, 'postgres']);
    // DDL makes plans be worked out again; it cannot change what a built-in is.
    planner.forgetPlans(PG.database);
    expect(await planner.plan(PG.database, PG.user, 'SELECT abs($1::int) + 1')).toMatchObject({ cacheable: true });
    expect(catalog.loads).toEqual([PG.database, 'postgres']);
  });

  it('asks about user functions, even one created after the built-ins were read, overloads by argument count', async () => {
    const { planner } = plannerWithCatalog();
    await loadParser();
    expect(await planner.plan(PG.database, PG.user, 'SELECT abs($1::int)')).toMatchObject({ cacheable: true });
    const fn = unique('fn');
    const direct = await connect(undefined);
    onTestFinished(async () => {
      await direct.query(`DROP FUNCTION IF EXISTS ${fn}(int); DROP FUNCTION IF EXISTS ${fn}(int, int)`);
      await direct.end();
    });
    await direct.query(`CREATE FUNCTION ${fn}(int) RETURNS int IMMUTABLE LANGUAGE sql AS 'SELECT $1';
      CREATE FUNCTION ${fn}(int, int) RETURNS int VOLATILE LANGUAGE sql AS 'SELECT $1 + $2'`);
    expect(await planner.plan(PG.database, PG.user, `SELECT ${fn}(1)`)).toMatchObject({ cacheable: true });
    expect(await planner.plan(PG.database, PG.user, `SELECT ${fn}(1, 2)`)).toMatchObject({ cacheable: false, reason: `calls ${fn}, which is not IMMUTABLE` });
  });
});
