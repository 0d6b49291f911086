/**
 * `sidecache check --connect` (issue 12 point 4): the built CLI logs in to a real throwaway SCRAM
 * cluster as a given user, asks the catalog what the listener asks, and says whether reads will be
 * cached, with PostgreSQL's own error and the fix when not.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { clusterUnavailable, useCluster } from '../../helpers/pg-cluster.js';

const cli = new URL('../../../dist/cli.js', import.meta.url).pathname;
const noCluster = clusterUnavailable() !== undefined;
const dir = mkdtempSync(join(tmpdir(), 'sidecache-check-'));

/** Runs `sidecache check --connect` on a config file written from `yaml`, with `env` on top of a clean PG* environment. */
function check(yaml: string, args: string[], env: Record<string, string> = {}) {
  const file = join(dir, `config-${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, yaml);
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PG')));
  return spawnSync(process.execPath, [cli, 'check', '-c', file, '--connect', ...args], { encoding: 'utf8', env: { ...clean, ...env }, timeout: 30_000 });
}

function listener(port: number, database: string, rules = ''): string {
  return `postgres:\n  - name: main\n    listen: "127.0.0.1:0"\n    upstream: "postgres://127.0.0.1:${port}/${database}"\n${rules}`;
}

describe.skipIf(noCluster)('check --connect against a throwaway SCRAM cluster', () => {
  const cluster = useCluster({ auth: 'scram-sha-256' });
  /** Role alice (not a superuser); databases `app` (one table) and `locked`, where PUBLIC may not read pg_proc (a per-database catalog; this cluster only). */
  beforeAll(async () => {
    // CREATE DATABASE cannot run inside a multi-statement query's implicit transaction: one statement each.
    for (const sql of ["CREATE ROLE alice LOGIN PASSWORD 'alice-pw'", 'CREATE DATABASE app OWNER alice', 'CREATE DATABASE locked OWNER alice'])
      await cluster.admin(sql);
    for (const [database, sql] of [
      ['app', 'CREATE TABLE public.items (id int)'],
      ['locked', 'REVOKE SELECT ON pg_catalog.pg_proc FROM PUBLIC'],
    ] as const) {
      const client = new pg.Client({ host: cluster.host, port: cluster.port, user: 'postgres', password: cluster.password, database });
      await client.connect();
      await client.query(sql);
      await client.end();
    }
  });

  it('with the right password (PGPASSWORD): authentication ok, the server supported, "reads will be cached", exit 0', () => {
    const result = check(listener(cluster.port, 'app'), ['--user', 'alice'], { PGPASSWORD: 'alice-pw' });
    expect(result.stderr).toBe('');
    expect(result.stdout).toContain(`postgres[main]: upstream 127.0.0.1:${cluster.port} (sslmode=prefer), user "alice", database "app"`);
    expect(result.stdout).toContain('authentication: ok');
    expect(result.stdout).toMatch(/server: PostgreSQL \d+\.\d+.*, supported \(13 to 18\)/);
    expect(result.stdout).toContain('catalog: ok');
    expect(result.stdout).toContain('verdict: reads will be cached for user alice on database app');
    expect(result.status).toBe(0);
  });

  it('with a wrong password: PostgreSQL 28P01 in the output, "nothing will be cached" with the fix, exit 1', () => {
    const result = check(listener(cluster.port, 'app'), ['--user', 'alice'], { PGPASSWORD: 'wrong' });
    expect(result.stdout).toContain('authentication: failed: 28P01 password authentication failed for user "alice"');
    expect(result.stdout).toMatch(/verdict: nothing will be cached: the user cannot log in \(authentication: 28P01 .*\); check the user and password/);
    expect(result.status).toBe(1);
  });

  it('--password-file is read (its first line) in place of PGPASSWORD, and the URL names the user', () => {
    const file = join(dir, 'password');
    writeFileSync(file, 'alice-pw\n');
    const yaml = `postgres:\n  - name: main\n    listen: "127.0.0.1:0"\n    upstream: "postgres://alice@127.0.0.1:${cluster.port}/app?sslmode=disable"\n`;
    const result = check(yaml, ['--password-file', file], { PGPASSWORD: 'wrong' });
    expect(result.stdout).toContain('verdict: reads will be cached for user alice on database app');
    expect(result.status).toBe(0);
  });

  it('a role that may not read pg_proc: the permission reason with its fix, "nothing will be cached", exit 1', () => {
    const result = check(listener(cluster.port, 'locked'), ['--user', 'alice'], { PGPASSWORD: 'alice-pw' });
    expect(result.stdout).toContain('authentication: ok');
    expect(result.stdout).toContain('catalog: failed (permission): 42501 permission denied for table pg_proc');
    expect(result.stdout).toMatch(/verdict: nothing will be cached: the catalog could not be asked \(permission: 42501 [^)]*\); grant the catalog identity/);
    expect(result.status).toBe(1);
  });

  it('lists the rule tables the database does not have (schema and quotes as rules spell them); reads are still cached', () => {
    const rules = '    rules:\n      - tables: [items, nosuch]\n      - { tables: ["public.Items", other.items], ttl: 5s }\n';
    const result = check(listener(cluster.port, 'app', rules), ['--user', 'alice'], { PGPASSWORD: 'alice-pw' });
    expect(result.stdout).toContain('rules[0].tables: no table "nosuch" in database "app"');
    expect(result.stdout).toContain('rules[1].tables: no table "other.items" in database "app"');
    expect(result.stdout).not.toMatch(/no table "items"|no table "public.Items"/);
    expect(result.stdout).toContain('verdict: reads will be cached for user alice on database app');
    expect(result.status).toBe(0);
  });

  it('checks every listener and exits 1 when one cannot cache; an unreachable upstream is said as such', () => {
    const yaml = `${listener(cluster.port, 'app')}  - name: gone\n    listen: "127.0.0.1:0"\n    upstream: "postgres://127.0.0.1:1/app"\n`;
    const result = check(yaml, ['--user', 'alice'], { PGPASSWORD: 'alice-pw' });
    expect(result.stdout).toContain('verdict: reads will be cached for user alice on database app');
    expect(result.stdout).toContain('postgres[gone]: upstream 127.0.0.1:1');
    expect(result.stdout).toMatch(/connection: failed: .*ECONNREFUSED/);
    expect(result.stdout).toMatch(/verdict: nothing will be cached: the upstream cannot be reached \(unreachable: /);
    expect(result.status).toBe(1);
  });
});

describe.skipIf(noCluster)('check --connect: TLS to the upstream as the listener negotiates it', () => {
  // Only TLS logins are accepted: a check that connected without TLS would be refused.
  const cluster = useCluster({ auth: 'scram-sha-256', ssl: true, hba: ['hostnossl all all 127.0.0.1/32 reject'] });
  const yaml = (params: string) => listener(cluster.port, `postgres?${params}`);

  it('sslmode=verify-ca with the CA of the server logs in over TLS; another CA is "not trusted"; disable meets pg_hba\'s reject', () => {
    const env = { PGPASSWORD: cluster.password };
    const trusted = check(yaml(`sslmode=verify-ca&sslrootcert=${cluster.pki!.caFile}`), ['--user', 'postgres'], env);
    expect(trusted.stdout).toContain('(sslmode=verify-ca)');
    expect(trusted.stdout).toContain('verdict: reads will be cached for user postgres on database postgres');
    expect(trusted.status).toBe(0);
    const untrusted = check(yaml(`sslmode=verify-ca&sslrootcert=${cluster.pki!.otherCaFile}`), ['--user', 'postgres'], env);
    expect(untrusted.stdout).toContain("connection: failed: the server's certificate is not trusted (sslmode=verify-ca)");
    expect(untrusted.status).toBe(1);
    const plain = check(yaml('sslmode=disable'), ['--user', 'postgres'], env);
    expect(plain.stdout).toMatch(/authentication: failed: 28000 .*no encryption/);
    expect(plain.status).toBe(1);
  });
});

describe('check --connect: configuration errors', () => {
  it('exits 2 for an invalid or missing configuration, printing every problem', () => {
    const result = check('postgres:\n  - name: main\n    upstream: "mysql://x"\n', []);
    expect(result.stderr).toContain('postgres[0].listen');
    expect(result.stderr).toContain('postgres[0].upstream');
    expect(result.status).toBe(2);
    const missing = spawnSync(process.execPath, [cli, 'check', '-c', join(dir, 'absent.yaml'), '--connect'], { encoding: 'utf8' });
    expect(missing.stderr).toContain('no such file');
    expect(missing.status).toBe(2);
  });
});
