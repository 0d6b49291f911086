import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SidecacheServer } from '../../src/server.js';
import { connect, PG, pgUnreachable, unique } from '../helpers/pg.js';
import { startSidecache } from '../helpers/sidecache.js';

const run = promisify(execFile);
const unreachable = await pgUnreachable();
const cli = (...args: string[]) => run(process.execPath, ['dist/cli.js', ...args]);

describe.skipIf(unreachable !== undefined)('sidecache sql triggers: writes made directly to the database invalidate', () => {
  const schema = unique('trig');
  const channel = unique('chan');
  let direct: pg.Client;
  let server: SidecacheServer;
  let via: pg.Client;

  beforeAll(async () => {
    direct = await connect(undefined);
    await direct.query(`CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.items (id int PRIMARY KEY, v text); CREATE TABLE ${schema}.other (v text);
      INSERT INTO ${schema}.items VALUES (1, 'one'); INSERT INTO ${schema}.other VALUES ('x')`);
    const { stdout } = await cli('sql', 'triggers', '--channel', channel, '--schema', schema, '--all-tables', '--ddl');
    await direct.query(stdout);
    server = await startSidecache(
      `postgres:\n  - { name: main, listen: "127.0.0.1:0", upstream: "postgres://${PG.host}:${PG.port}?sslmode=disable" }\n` +
        `invalidation:\n  - { type: postgres, url: "postgres://${PG.user}@${PG.host}:${PG.port}/${PG.database}", channel: ${channel} }\n`,
    );
    via = await connect(server.postgresListeners[0]!.address.port);
  });
  afterAll(async () => {
    await via?.end();
    await server?.stop(100);
    const { stdout } = await cli('sql', 'triggers', '--channel', channel, '--schema', schema, '--ddl', '--uninstall');
    await direct.query(stdout);
    await direct.query(`DROP SCHEMA ${schema} CASCADE`);
    await direct.end();
  });

  const read = async () => (await via.query(`SELECT v FROM ${schema}.items WHERE id = 1`)).rows[0].v;
  const eventually = async (expected: string) => {
    const deadline = Date.now() + 2000;
    let got = await read();
    while (got !== expected && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
      got = await read();
    }
    return got;
  };

  it('a direct UPDATE reaches sidecache through NOTIFY within milliseconds', async () => {
    expect(await read()).toBe('one');
    expect(await read()).toBe('one');
    const started = Date.now();
    await direct.query(`UPDATE ${schema}.items SET v = 'two' WHERE id = 1`);
    expect(await eventually('two')).toBe('two');
    expect(Date.now() - started).toBeLessThan(500);
  });

  it('DDL flushes everything through the event trigger', async () => {
    await read();
    await read();
    const entries = server.store.size;
    expect(entries).toBeGreaterThan(0);
    await direct.query(`ALTER TABLE ${schema}.other ADD COLUMN extra int`);
    const deadline = Date.now() + 2000;
    while (server.store.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(server.store.size).toBe(0);
  });

  it('prints usage errors with exit 2', async () => {
    const err = await cli('sql', 'triggers', '--tables', 'a').catch((e: { code: number; stderr: string }) => e);
    expect(err).toMatchObject({ code: 2 });
    expect((err as { stderr: string }).stderr).toMatch(/--channel/);
  });
});
