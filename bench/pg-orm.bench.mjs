// Hit ratio of ordinary application traffic through the PostgreSQL listener: pgbench scripts
// shaped like what ORMs send (Django: a SET per request then reads; Rails: reads around a
// transaction with SET LOCAL and a write to another table; Prisma: application_name then
// prepared reads), in simple, extended and prepared mode. Default deny must not turn this
// traffic into bypass. Prints TPS against PostgreSQL direct, and the listener's own counts of
// hit / miss / bypass over the measured run, from /metrics.
// Needs pgbench and PostgreSQL at PGHOST/PGPORT (default 127.0.0.1:5432), database PGDATABASE (test).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { fmt, PG, pgbench, scratch, startSidecache } from './lib/pg.mjs';

const DURATION_S = Number(process.env.BENCH_DURATION ?? 5);
const dir = scratch();

const admin = new pg.Client(PG);
await admin.connect();
await admin.query(`DROP TABLE IF EXISTS sc_orm_items, sc_orm_counters;
  CREATE TABLE sc_orm_items (id int PRIMARY KEY, v text); INSERT INTO sc_orm_items SELECT g, md5(g::text) FROM generate_series(1, 10000) g;
  CREATE TABLE sc_orm_counters (id int PRIMARY KEY, n int NOT NULL DEFAULT 0); INSERT INTO sc_orm_counters SELECT g FROM generate_series(1, 1000) g;
  ANALYZE sc_orm_items; ANALYZE sc_orm_counters`);

const scripts = {
  django: `\\set id random(1, 1000)
SET search_path = public;
SELECT id, v FROM sc_orm_items WHERE id = :id;
SELECT count(*) FROM sc_orm_items WHERE id < :id;
`,
  rails: `\\set id random(1, 1000)
SELECT id, v FROM sc_orm_items WHERE id = :id;
BEGIN;
SET LOCAL statement_timeout = '5s';
SELECT id, v FROM sc_orm_items WHERE id = :id;
UPDATE sc_orm_counters SET n = n + 1 WHERE id = :id;
COMMIT;
SELECT id, v FROM sc_orm_items WHERE id = :id;
`,
  prisma: `\\set id random(1, 1000)
SET application_name = 'prisma';
SELECT id, v FROM sc_orm_items WHERE id = :id;
`,
};
for (const [name, text] of Object.entries(scripts)) writeFileSync(join(dir, `${name}.sql`), text);

const sidecache = await startSidecache(dir);

/** sidecache_requests_total of the Postgres listener, by result. */
async function counts() {
  const text = await (await fetch(`http://127.0.0.1:${sidecache.admin}/metrics`)).text();
  const out = { hit: 0, miss: 0, bypass: 0, error: 0 };
  for (const m of text.matchAll(/^sidecache_requests_total\{[^}]*protocol="postgres"[^}]*result="(\w+)"[^}]*\} (\d+)/gm))
    out[m[1]] = (out[m[1]] ?? 0) + Number(m[2]);
  return out;
}

try {
  for (const script of Object.keys(scripts)) {
    for (const mode of ['simple', 'extended', 'prepared']) {
      const file = join(dir, `${script}.sql`);
      const direct = await pgbench(PG.port, mode, file, DURATION_S);
      await pgbench(sidecache.port, mode, file, 2);
      const before = await counts();
      const proxied = await pgbench(sidecache.port, mode, file, DURATION_S);
      const after = await counts();
      const d = Object.fromEntries(Object.keys(after).map((k) => [k, after[k] - (before[k] ?? 0)]));
      const total = d.hit + d.miss + d.bypass + d.error;
      console.log(
        `${script.padEnd(7)} ${mode.padEnd(8)}  direct ${fmt(direct)}   sidecache ${fmt(proxied)}   ratio ${(proxied.tps / direct.tps).toFixed(2)}` +
          `   hit ${((100 * d.hit) / total).toFixed(1)}%  miss ${((100 * d.miss) / total).toFixed(1)}%  bypass ${((100 * d.bypass) / total).toFixed(1)}%  of ${total} statements`,
      );
    }
  }
} finally {
  await sidecache.stop();
  await admin.query('DROP TABLE IF EXISTS sc_orm_items, sc_orm_counters');
  await admin.end();
}
