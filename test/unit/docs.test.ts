import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { describeSchema } from '../../src/config/spec.js';
import { ERROR_CODES, WARNING_CODES } from '../../src/errors.js';
import { METRICS } from '../../src/metrics/definitions.js';

const read = (path: string): string => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');
const contracts = read('docs/contracts.md');
/** Every document a user reads: the README and docs/. */
const documents = ['README.md', ...readdirSync(new URL('../../docs/', import.meta.url)).map((f) => `docs/${f}`)].map((path) => ({ path, text: read(path) }));

describe('docs/contracts.md stays true to the code', () => {
  it('documents every error and warning code, and no document names a code that does not exist', () => {
    const known = [...Object.keys(ERROR_CODES), ...Object.keys(WARNING_CODES)];
    for (const code of known) expect(contracts).toContain(`| \`${code}\` |`);
    for (const { path, text } of documents) {
      const named = new Set(text.match(/SC_(?:ERR|WARN)_[A-Z_]+/g));
      expect(
        [...named].filter((c) => !known.includes(c)),
        path,
      ).toEqual([]);
    }
  });

  it('lists every metric in the metrics table, and no document names a metric that does not exist', () => {
    const known: string[] = Object.values(METRICS).map((def) => def.name);
    for (const name of known) expect(contracts).toContain(`| \`${name}\` |`);
    for (const { path, text } of documents) {
      const named = new Set(text.match(/\bsidecache_[a-z_]+[a-z]/g));
      expect(
        [...named].filter((n) => !known.includes(n)),
        path,
      ).toEqual([]);
    }
  });

  it('lists every configuration key with its default', () => {
    const keys = describeSchema(configSchema);
    const leaves = keys.filter((k) => !keys.some((o) => o.path.startsWith(`${k.path}.`) || o.path.startsWith(`${k.path}[]`)));
    const rows = contracts.split('\n').filter((line) => /^\| `[a-zA-Z[\].]+` \|/.test(line));
    for (const key of leaves) {
      const row = rows.find((line) => line.startsWith(`| \`${key.path}\` |`));
      expect(row, `contracts row for ${key.path}`).toBeDefined();
      const shown = key.required ? 'required' : key.default === undefined ? '—' : key.default;
      const cell = row!.split('|')[2]!.trim().replace(/`/g, '');
      expect(cell === shown || JSON.stringify(cell) === shown, `${key.path}: contracts say ${cell}, schema ${shown}`).toBe(true);
    }
  });

  it('lists every admin route, and no route that does not exist', () => {
    const source = read('src/admin/server.ts');
    const routes = [...source.matchAll(/\['(\/[^']*)', \{ method: '([A-Z]+)'/g)].map((m) => `${m[2]} ${m[1]}`);
    expect(routes.length).toBeGreaterThan(5);
    const documented = [...contracts.matchAll(/^\| `([A-Z]+) (\/[^?`]*)[^`]*` \|/gm)].map((m) => `${m[1]} ${m[2]}`);
    expect(new Set(documented)).toEqual(new Set(routes));
  });
});
