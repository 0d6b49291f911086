import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configSchema } from '../../src/config/schema.js';
import { describeSchema } from '../../src/config/spec.js';
import { ERROR_CODES, WARNING_CODES } from '../../src/errors.js';
import { METRICS } from '../../src/metrics/definitions.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

describe('README stays true to the code', () => {
  it('documents every error and warning code, and documents no code that does not exist', () => {
    const known = [...Object.keys(ERROR_CODES), ...Object.keys(WARNING_CODES)];
    for (const code of known) expect(readme).toContain(`\`${code}\``);
    const documented = new Set(readme.match(/SC_(?:ERR|WARN)_[A-Z_]+/g));
    expect([...documented].filter((c) => !known.includes(c))).toEqual([]);
  });

  it('lists every metric in the metrics table', () => {
    for (const def of Object.values(METRICS)) expect(readme).toContain(`| \`${def.name}\` |`);
  });

  it('lists every configuration key with its default', () => {
    const keys = describeSchema(configSchema);
    const leaves = keys.filter((k) => !keys.some((o) => o.path.startsWith(`${k.path}.`) || o.path.startsWith(`${k.path}[]`)));
    for (const key of leaves) {
      const row = readme.split('\n').find((line) => line.startsWith(`| \`${key.path}\` |`));
      expect(row, `README row for ${key.path}`).toBeDefined();
      const shown = key.required ? 'required' : key.default === undefined ? '—' : key.default;
      const cell = row!.split('|')[2]!.trim().replace(/`/g, '');
      expect(cell === shown || JSON.stringify(cell) === shown, `${key.path}: README says ${cell}, schema ${shown}`).toBe(true);
    }
  });
});
