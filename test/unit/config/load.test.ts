import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig, parseConfig } from '../../../src/config/load.js';
import { parseListen } from '../../../src/config/fields.js';
import { configSchema } from '../../../src/config/schema.js';
import { describeSchema } from '../../../src/config/spec.js';
import type { ConfigError } from '../../../src/errors.js';

function problemsOf(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(text, 'test.yaml', env);
  } catch (err) {
    return (err as ConfigError).problems.map((p) => `${p.path}: ${p.message}`);
  }
  throw new Error('expected the configuration to be refused');
}

describe('parseConfig', () => {
  it('fills every default for an empty file and for a file with only admin', () => {
    const empty = parseConfig('', 'empty.yaml', {});
    expect(empty).toEqual({
      cache: { maxBytes: 256 * 1024 ** 2, maxEntryBytes: 8 * 1024 ** 2 },
      admin: { listen: '127.0.0.1:9090', token: '', allowUnauthenticated: false },
      readyz: { requireBuses: false },
      log: { access: false },
      http: [],
      postgres: [],
      invalidation: [],
      shutdownGrace: 10_000,
      workers: 1,
    });
    expect(parseConfig('admin:\n  listen: 127.0.0.1:0\n', 'a.yaml', {}).admin.listen).toBe('127.0.0.1:0');
  });

  it('reads invalidation[].whileDown (bypass or ttl:<duration>) and publish, with their defaults (issue 17)', () => {
    const parse = (extra: string) => parseConfig(`invalidation:\n  - { type: redis, url: "redis://127.0.0.1:6379"${extra} }\n`, 'b.yaml', {}).invalidation[0]!;
    expect(parse('')).toMatchObject({ whileDown: { maxAgeMs: 0 }, publish: true });
    expect(parse(', whileDown: bypass, publish: false')).toMatchObject({ whileDown: { maxAgeMs: 0 }, publish: false });
    expect(parse(', whileDown: "ttl:30s"').whileDown).toEqual({ maxAgeMs: 30_000 });
    for (const bad of ['ttl:0s', 'ttl:', 'ttl:soon', 'keep', '30s', '5']) {
      const problems = problemsOf(`invalidation:\n  - { type: redis, url: "redis://127.0.0.1:6379", whileDown: "${bad}" }\n`);
      expect(problems).toEqual([expect.stringContaining('invalidation[0].whileDown: expected bypass or ttl:<duration>')]);
    }
  });

  it('reports an unknown key, a bad duration and a bad size together, each with its key path', () => {
    const text = [
      'cache:',
      '  maxBytes: lots',
      'http:',
      '  - name: api',
      '    listen: 127.0.0.1:8080',
      '    upstream: http://127.0.0.1:3000',
      '    defaultTtl: abc',
      '    colour: blue',
    ].join('\n');
    let message = '';
    try {
      parseConfig(text, 'bad.yaml', {});
    } catch (err) {
      message = (err as Error).message;
      expect((err as ConfigError).code).toBe('SC_ERR_CONFIG_INVALID');
    }
    expect(message).toContain('bad.yaml');
    expect(message).toContain('cache.maxBytes: expected a size like "64MiB", got "lots"');
    expect(message).toContain('http[0].defaultTtl: expected a duration like "30s", got "abc"');
    expect(message).toContain('http[0].colour: unknown key');
  });

  it('names required keys, wrong kinds, bad URLs, bad addresses and unknown bus types', () => {
    const problems = problemsOf(`
http:
  - listen: "127.0.0.1:99999"
    upstream: ftp://x
    rules: [{ path: "users" }]
postgres:
  - { name: "a b", listen: ":6432", upstream: "http://db", rules: [{ tables: [] }] }
invalidation:
  - { type: kafka, url: "x" }
  - { type: redis }
admin: [1]
shutdownGrace: 10
`);
    expect(problems).toEqual(
      expect.arrayContaining([
        'http[0].name: is required: expected a name of letters, digits, "_", "." or "-"',
        'http[0].listen: expected an address like "127.0.0.1:8080", got "127.0.0.1:99999"',
        expect.stringMatching(/^http\[0\]\.upstream: expected a URL like "http:\/\/127\.0\.0\.1:3000", got "ftp:\/\/x"/),
        'http[0].rules[0].path: expected a path glob starting with "/", got "users"',
        expect.stringMatching(/^postgres\[0\]\.name: expected a name/),
        expect.stringMatching(/^postgres\[0\]\.upstream: expected a URL like "postgres:/),
        'postgres[0].rules[0].tables: expected a list of at least 1 (each item a table name), got a list',
        expect.stringMatching(/^invalidation\[0\]\.type: expected one of "postgres", "redis", .*"redis-stream".*"postgres-wal".*, got "kafka"$/),
        'invalidation[1].url: is required: expected a URL like "redis://127.0.0.1:6379"',
        'admin: expected a mapping, got a list',
        'shutdownGrace: expected a duration like "30s", got 10',
      ]),
    );
  });

  it('checks rules that span keys: unique names and addresses, entry size within the total', () => {
    const problems = problemsOf(`
cache: { maxBytes: 1MiB, maxEntryBytes: 2MiB }
admin: { listen: "127.0.0.1:8080" }
http:
  - { name: api, listen: "127.0.0.1:8080", upstream: "http://127.0.0.1:3000" }
postgres:
  - { name: api, listen: "127.0.0.1:6432", upstream: "postgres://127.0.0.1:5432" }
`);
    expect(problems).toEqual([
      'cache.maxEntryBytes: expected at most cache.maxBytes',
      'http[0].listen: expected a free address, 127.0.0.1:8080 is also admin.listen',
      'postgres[0].name: expected a unique name, "api" is also http[0].name',
    ]);
  });

  it('reports YAML syntax errors and duplicate keys with their line', () => {
    expect(problemsOf('admin:\n  listen: [\n')[0]).toMatch(/line \d+: YAML/);
    expect(problemsOf('admin: {}\nadmin: {}\n')[0]).toMatch(/line 2: YAML: .*[Uu]nique|line 2: YAML/);
  });

  it('refuses an admin beyond loopback without a token, unless allowUnauthenticated says so', () => {
    for (const listen of ['0.0.0.0:9090', ':9090', '10.0.0.5:9090', '[::]:9090']) {
      expect(problemsOf(`admin: { listen: "${listen}" }\n`)).toEqual([
        expect.stringMatching(/^admin\.token: expected a token: admin\.listen .* is reachable from other hosts/),
      ]);
      expect(parseConfig(`admin: { listen: "${listen}", token: t }\n`, 'a.yaml', {}).admin.token).toBe('t');
      expect(parseConfig(`admin: { listen: "${listen}", allowUnauthenticated: true }\n`, 'a.yaml', {}).admin.allowUnauthenticated).toBe(true);
    }
    for (const listen of ['127.0.0.1:9090', '127.1.2.3:0', '[::1]:9090', 'localhost:9090']) {
      expect(() => parseConfig(`admin: { listen: "${listen}" }\n`, 'a.yaml', {})).not.toThrow();
    }
  });

  it('interpolates the environment before parsing and reports unset variables', () => {
    const config = parseConfig('admin:\n  token: ${TOKEN}\n  listen: ${ADDR:-127.0.0.1:9999}\n', 'env.yaml', { TOKEN: 's3cret' });
    expect(config.admin).toEqual({ token: 's3cret', listen: '127.0.0.1:9999', allowUnauthenticated: false });
    expect(problemsOf('admin:\n  token: ${TOKEN}\n')).toEqual([expect.stringContaining('environment variable TOKEN is not set')]);
  });

  it('freezes the result deeply', () => {
    const config = parseConfig('http:\n  - { name: a, listen: ":0", upstream: "http://x", rules: [{ path: "/a", tags: [t] }] }\n', 'f.yaml', {});
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.http[0]!.rules[0]!.tags)).toBe(true);
    expect(() => {
      (config.cache as { maxBytes: number }).maxBytes = 1;
    }).toThrow(TypeError);
  });

  it('parses listen addresses', () => {
    expect(parseListen('127.0.0.1:80')).toEqual({ host: '127.0.0.1', port: 80 });
    expect(parseListen('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(parseListen(':6432')).toEqual({ host: '0.0.0.0', port: 6432 });
    expect(parseListen('localhost')).toBeUndefined();
    expect(parseListen('a:65536')).toBeUndefined();
  });
});

describe('config/sidecache.yaml, the documented example', () => {
  const file = new URL('../../../config/sidecache.yaml', import.meta.url);

  it('loads', async () => {
    const config = await loadConfig(file.pathname, {});
    expect(config.http[0]?.rules[0]?.ttl).toBe(60_000);
    expect(config.invalidation.map((b) => b.type)).toEqual(['postgres', 'redis', 'redis-stream', 'postgres-wal']);
  });

  it('shows every key of the schema', () => {
    const shown = new Set<string>();
    const walk = (value: unknown, path: string): void => {
      if (Array.isArray(value)) value.forEach((v) => walk(v, `${path}[]`));
      else if (value !== null && typeof value === 'object') {
        for (const [k, v] of Object.entries(value)) {
          const at = path ? `${path}.${k}` : k;
          shown.add(at);
          walk(v, at);
        }
      }
    };
    walk(parse(readFileSync(file, 'utf8')), '');
    const missing = describeSchema(configSchema)
      .map((k) => k.path)
      .filter((p) => !shown.has(p));
    expect(missing).toEqual([]);
  });

  it('is refused with a clear error when the file is missing', async () => {
    await expect(loadConfig('/nonexistent/sidecache.yaml')).rejects.toMatchObject({ code: 'SC_ERR_CONFIG_READ' });
  });
});
