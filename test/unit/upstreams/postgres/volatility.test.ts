import { describe, expect, it } from 'vitest';
import { BuiltinFunctions, type ProcRow } from '../../../../src/upstreams/postgres/volatility.js';

const fn = (name: string, min: number, max: number, immutable: boolean, variadic = false, catalog = false): ProcRow => ({
  name,
  min_args: min,
  max_args: max,
  variadic,
  immutable,
  catalog,
});

/** Rows as pg_catalog has them (abridged): overloads by arity, defaults, variadics, mixed volatility. */
const builtins = new BuiltinFunctions([
  fn('abs', 1, 1, true),
  fn('length', 1, 1, true),
  fn('length', 2, 2, false),
  fn('now', 0, 0, false),
  fn('random', 0, 0, false),
  fn('concat', 0, 0, false, true),
  fn('to_char', 2, 2, false),
  fn('to_char', 2, 2, true),
  fn('round', 1, 2, true),
  fn('pg_partition_root', 1, 1, true, false, true),
  fn('to_tsvector', 1, 1, false),
  fn('to_tsvector', 2, 2, true, false, true),
  fn('to_tsvector', 2, 2, true),
]);

describe('BuiltinFunctions (pg_catalog.pg_proc)', () => {
  it('vouches for a call when every built-in of that name and argument count is IMMUTABLE', () => {
    expect(builtins.sort(['abs/1', 'length/1', 'round/1', 'round/2', 'pg_catalog.abs/1'])).toEqual({ volatile: [], catalog: [], unknown: [] });
  });

  it('names calls that may run a built-in that is not IMMUTABLE: volatile, stable, variadic or mixed overloads', () => {
    expect(builtins.sort(['now/0', 'random/0', 'length/2', 'concat/2', 'to_char/2', 'pg_catalog.now/0'])).toEqual({
      volatile: ['now/0', 'random/0', 'length/2', 'concat/2', 'to_char/2', 'pg_catalog.now/0'],
      catalog: [],
      unknown: [],
    });
  });

  it('names calls of IMMUTABLE functions of which one overload takes or returns a type read from the catalog', () => {
    expect(builtins.sort(['pg_partition_root/1', 'to_tsvector/2', 'to_tsvector/1', 'abs/1'])).toEqual({
      volatile: ['to_tsvector/1'],
      catalog: ['pg_partition_root/1', 'to_tsvector/2'],
      unknown: [],
    });
  });

  it('leaves to the catalog what no built-in answers: other names, argument counts, schemas', () => {
    expect(builtins.sort(['slugify/1', 'abs/2', 'round/3', 'app.abs/1', 'app.now/0'])).toEqual({
      volatile: [],
      catalog: [],
      unknown: ['slugify/1', 'abs/2', 'round/3', 'app.abs/1', 'app.now/0'],
    });
  });

  it('with builtin false, answers for the functions of every other schema: unqualified or qualified there, never pg_catalog', () => {
    const others = new BuiltinFunctions([fn('upper', 1, 1, false), fn('slug', 1, 1, true)], false);
    expect(others.sort(['upper/1', 'app.upper/1', 'pg_catalog.upper/1', 'slug/1', 'upper/2'])).toEqual({
      volatile: ['upper/1', 'app.upper/1'],
      catalog: [],
      unknown: ['pg_catalog.upper/1', 'upper/2'],
    });
  });
});
