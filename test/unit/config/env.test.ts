import { describe, expect, it } from 'vitest';
import { interpolate } from '../../../src/config/env.js';

describe('interpolate', () => {
  const env = { A: 'alpha', EMPTY: '' };

  it('replaces ${NAME} and ${NAME:-default}', () => {
    expect(interpolate('x: ${A}\ny: ${B:-beta}\nz: ${A:-unused}', env)).toEqual({ text: 'x: alpha\ny: beta\nz: alpha', problems: [] });
  });

  it('uses the default for an empty variable, and an empty value when there is no default', () => {
    expect(interpolate('${EMPTY:-d} ${EMPTY}', env).text).toBe('d ');
  });

  it('reports each unset variable with its line, and keeps $$ as a literal $', () => {
    const result = interpolate('a: $${A}\nb: ${MISSING}\nc: ${ALSO_MISSING}', env);
    expect(result.text.split('\n')[0]).toBe('a: ${A}');
    expect(result.problems.map((p) => p.message)).toEqual([
      expect.stringContaining('line 2: environment variable MISSING is not set'),
      expect.stringContaining('line 3: environment variable ALSO_MISSING is not set'),
    ]);
  });

  it('leaves whole-line comments alone', () => {
    expect(interpolate('  # token: ${NOT_SET}', env)).toEqual({ text: '  # token: ${NOT_SET}', problems: [] });
  });
});
