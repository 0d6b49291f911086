import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../', import.meta.url));
const src = join(root, 'src');

/** The "What each folder may import" table of docs/architecture.md: module → modules it may import. */
function allowedImports(): Map<string, Set<string>> {
  const doc = readFileSync(join(root, 'docs/architecture.md'), 'utf8');
  const section = doc.split('## What each folder may import')[1]!.split('\n## ')[0]!;
  const allowed = new Map<string, Set<string>>();
  for (const line of section.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    const module = /^`([a-z/-]+)`$/.exec(cells[1] ?? '')?.[1];
    if (module === undefined) continue;
    allowed.set(module, new Set([...(cells[2] ?? '').matchAll(/`([a-z/-]+)`/g)].map((m) => m[1]!)));
  }
  return allowed;
}

/** The module a source file belongs to: `upstreams/http` for its files, `cache` for cache/x.ts, `server` for server.ts. */
function moduleOf(file: string): string {
  const parts = relative(src, file).replace(/\.ts$/, '').split('/');
  if (parts[0] === 'upstreams' && parts.length > 2) return `upstreams/${parts[1]}`;
  return parts[0]!;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

describe('docs/architecture.md', () => {
  it('allows every import between modules of src/, and names every module', () => {
    const allowed = allowedImports();
    const offending: string[] = [];
    for (const file of sourceFiles(src)) {
      const from = moduleOf(file);
      expect(allowed.has(from), `docs/architecture.md has no row for ${from}`).toBe(true);
      for (const m of readFileSync(file, 'utf8').matchAll(/from '(\.[^']+)'/g)) {
        const to = moduleOf(normalize(join(dirname(file), m[1]!.replace(/\.js$/, '.ts'))));
        if (to !== from && !allowed.get(from)?.has(to)) offending.push(`${relative(root, file)} imports ${to}`);
      }
    }
    expect(offending).toEqual([]);
  });

  it('names only files that exist in its paths through the code', () => {
    const doc = readFileSync(join(root, 'docs/architecture.md'), 'utf8');
    const files = new Set(sourceFiles(src).map((f) => relative(src, f).split('/').pop()));
    const named = [...doc.matchAll(/`(?:[a-z-]+\/)*([a-z-]+\.ts)`/g)].map((m) => m[1]!);
    expect(named.filter((n) => !files.has(n))).toEqual([]);
  });
});
