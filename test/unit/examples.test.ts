import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { METRICS } from '../../src/metrics/definitions.js';

const root = new URL('../../examples/', import.meta.url).pathname;

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)]));
}

const known = new Set<string>(Object.values(METRICS).map((m) => m.name));
/** Histograms are queried through their _bucket/_sum/_count series. */
const baseName = (name: string) => name.replace(/_(bucket|sum|count)$/, '');

describe('examples/', () => {
  it('every YAML and JSON file parses', () => {
    for (const file of files(root)) {
      const text = readFileSync(file, 'utf8');
      if (file.endsWith('.json')) expect(() => JSON.parse(text), file).not.toThrow();
      if (file.endsWith('.yaml') || file.endsWith('.yml')) {
        for (const doc of parseAllDocuments(text)) expect(doc.errors, file).toEqual([]);
      }
    }
  });

  it('the dashboard and the alerts use only metrics sidecache exports', () => {
    const used = new Set<string>();
    for (const file of [join(root, 'grafana/sidecache.json'), join(root, 'prometheus/alerts.yaml')]) {
      for (const match of readFileSync(file, 'utf8').matchAll(/\bsidecache_[a-z_]+/g)) used.add(baseName(match[0]));
    }
    expect(used.size).toBeGreaterThan(8);
    expect([...used].filter((name) => !known.has(name))).toEqual([]);
  });

  // The Kubernetes example (its configuration read with its Secret mounted) is checked by kubernetes.test.ts.
  it('the sidecache configurations in the examples are valid', () => {
    const env = { SIDECACHE_ADMIN_TOKEN: 't', SIDECACHE_CATALOG_PASSWORD: 'p' };
    expect(() => parseConfig(readFileSync(join(root, 'compose-sidecache.yaml'), 'utf8'), 'compose', env)).not.toThrow();
    expect(() => parseConfig(readFileSync(join(root, 'pgbouncer/sidecache.yaml'), 'utf8'), 'pgbouncer', env)).not.toThrow();
    const gateway = parseConfig(readFileSync(new URL('../../config/gateway.yaml', import.meta.url), 'utf8'), 'gateway', env);
    expect(gateway.http[0]!.routes!.map((r) => r.name)).toEqual(['billing', 'users', 'tenants']);
  });
});
