import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LineCounter, parseDocument } from 'yaml';
import { interpolate } from '../../../src/config/env.js';
import { parseConfig } from '../../../src/config/load.js';

/** The document's values after interpolation, and the problems. */
function expand(text: string, env: NodeJS.ProcessEnv): { value: unknown; problems: string[] } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines });
  const problems = interpolate(doc, env, lines).map((p) => p.message);
  return { value: doc.toJS(), problems };
}

describe('interpolate', () => {
  const env = { A: 'alpha', EMPTY: '', PORT: '6432', SECRET: '#not a comment "quoted" \\ end' };
  const dir = mkdtempSync(join(tmpdir(), 'sidecache-env-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('replaces ${NAME} and ${NAME:-default} in values', () => {
    expect(expand('x: ${A}\ny: ${B:-beta}\nz: "${A:-unused}/x"', env)).toEqual({ value: { x: 'alpha', y: 'beta', z: 'alpha/x' }, problems: [] });
  });

  it('uses the default for an empty variable, and an empty value when there is no default', () => {
    expect(expand('v: "${EMPTY:-d} ${EMPTY}"', env).value).toEqual({ v: 'd ' });
  });

  it('reports each unset variable with its line, and keeps $$ as a literal $', () => {
    const result = expand('a: $${A}\nb: ${MISSING}\nc: ${ALSO_MISSING}', env);
    expect(result.value).toMatchObject({ a: '${A}' });
    expect(result.problems).toEqual([
      expect.stringContaining('line 2: environment variable MISSING is not set'),
      expect.stringContaining('line 3: environment variable ALSO_MISSING is not set'),
    ]);
  });

  it('leaves comments alone', () => {
    expect(expand('a: 1\n  # token: ${NOT_SET}\nb: 2 # ${NOT_SET_EITHER}', env)).toEqual({ value: { a: 1, b: 2 }, problems: [] });
  });

  it('keeps a secret with #, quotes and backslashes one value, quoted or not (it became a comment when substituted into the text)', () => {
    expect(expand('plain: ${SECRET}\nquoted: "${SECRET}"\nflow: { t: "${SECRET}" }', env).value).toEqual({
      plain: env.SECRET,
      quoted: env.SECRET,
      flow: { t: env.SECRET },
    });
    const config = parseConfig('admin:\n  listen: 127.0.0.1:0\n  token: ${SECRET}\n', 'env.yaml', env);
    expect(config.admin.token).toBe(env.SECRET);
  });

  it('reads ${file:PATH} without its final newline, and reports a file it cannot read with its line', () => {
    const file = join(dir, 'token');
    writeFileSync(file, 's3cret\n');
    expect(expand(`t: \${file:${file}}\nu: "x-\${file:${file}}"`, env)).toEqual({ value: { t: 's3cret', u: 'x-s3cret' }, problems: [] });
    expect(expand(`a: 1\nt: \${file:${join(dir, 'missing')}}`, env).problems).toEqual([expect.stringMatching(/^line 2: cannot read .*missing.* \(ENOENT\)$/)]);
  });

  it('reads a plain value that is one reference as YAML reads a number or a boolean; quoted values stay strings', () => {
    expect(expand('n: ${PORT}\nq: "${PORT}"\nb: ${T:-true}\ns: ${A}', env).value).toEqual({ n: 6432, q: '6432', b: true, s: 'alpha' });
  });
});
