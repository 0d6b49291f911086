import type { ConfigProblem } from '../errors.js';
import { formatDuration, formatSize, parseDuration, parseSize, type Parsed } from './units.js';

/**
 * A small schema language: each spec checks a value at a key path, reports what it expected,
 * and carries the default for an absent key. The TypeScript type of a config is inferred from
 * its specs (`Infer`), so types, defaults and validation are written once.
 */
export interface Spec<T> {
  /** What a valid value looks like, for messages: `a duration like "30s"`. */
  readonly expected: string;
  check(value: unknown, path: string, problems: ConfigProblem[]): T | undefined;
  /** How a default of this kind is written in YAML, when JSON would not do (`30s`, `8MiB`). */
  format?(value: T): string;
}

/** How an object field is filled when its key is absent. */
export interface Field<T> {
  readonly spec: Spec<T>;
  readonly required: boolean;
  /** The default, shown in `describeSchema`; undefined for optional keys with no default. */
  readonly default: T | undefined;
}

export type Infer<S> = S extends Spec<infer T> ? T : never;

type FieldValue<F> = F extends Field<infer T> ? (F extends { required: true } ? T : F extends { default: undefined } ? T | undefined : T) : never;
type Shape = Record<string, Field<unknown>>;
export type ObjectOf<S extends Shape> = { readonly [K in keyof S]: FieldValue<S[K]> };

export function required<T>(spec: Spec<T>): Field<T> & { required: true } {
  return { spec, required: true, default: undefined } as Field<T> & { required: true };
}

export function withDefault<T>(spec: Spec<T>, value: T): Field<T> & { required: false; default: T } {
  return { spec, required: false, default: value };
}

/** A mapping whose absence means "all defaults": its default is derived from its own keys. */
export function section<S extends Shape>(spec: ObjectSpec<S>): Field<ObjectOf<S>> & { required: false; default: ObjectOf<S> } {
  const problems: ConfigProblem[] = [];
  const defaults = spec.check({}, '', problems);
  if (defaults === undefined) throw new Error(`a section with required keys needs an explicit default: ${problems.map((p) => p.path).join(', ')}`);
  return { spec, required: false, default: defaults };
}

export function optional<T>(spec: Spec<T>): Field<T> & { required: false; default: undefined } {
  return { spec, required: false, default: undefined };
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return JSON.stringify(value);
}

function fromParser<T>(expected: string, parse: (v: unknown) => Parsed<T>, format?: (value: T) => string): Spec<T> {
  return {
    expected,
    ...(format && { format }),
    check(value, path, problems) {
      const parsed = parse(value);
      if (parsed.ok) return parsed.value;
      problems.push({ path, message: `expected ${expected}, got ${describe(value)}` });
      return undefined;
    },
  };
}

/** A spec that accepts what `base` accepts and then `test` accepts (`test` returns the complaint). */
/**
 * `base`, narrowed by `test` (undefined when the value is fine, else a complaint, '' for none).
 * `shown` says how a refused value appears in the error, for values that may hold secrets.
 */
export function refine<T>(base: Spec<T>, expected: string, test: (value: T) => string | undefined, shown: (value: T) => string = describe): Spec<T> {
  return {
    expected,
    ...(base.format && { format: base.format }),
    check(value, path, problems) {
      const checked = base.check(value, path, problems);
      if (checked === undefined) return undefined;
      const complaint = test(checked);
      if (complaint === undefined) return checked;
      problems.push({ path, message: `expected ${expected}, got ${shown(checked)}${complaint ? ` (${complaint})` : ''}` });
      return undefined;
    },
  };
}

export const string: Spec<string> = fromParser<string>('a string', (v) => (typeof v === 'string' ? { ok: true, value: v } : { ok: false }));
export const boolean: Spec<boolean> = fromParser<boolean>('true or false', (v) => (typeof v === 'boolean' ? { ok: true, value: v } : { ok: false }));
export const duration: Spec<number> = fromParser('a duration like "30s"', parseDuration, formatDuration);
export const size: Spec<number> = fromParser('a size like "64MiB"', parseSize, formatSize);

/** A whole number within `min`..`max`. */
export function integer(min: number, max: number): Spec<number> {
  return fromParser<number>(`a whole number from ${min} to ${max}`, (v) =>
    typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max ? { ok: true, value: v } : { ok: false },
  );
}

export function pattern(regex: RegExp, expected: string): Spec<string> {
  return refine(string, expected, (v) => (regex.test(v) ? undefined : ''));
}

export function oneOf<const T extends string>(values: readonly T[]): Spec<T> {
  const expected = `one of ${values.map((v) => JSON.stringify(v)).join(', ')}`;
  return fromParser<T>(expected, (v) => (values.includes(v as T) ? { ok: true, value: v as T } : { ok: false }));
}

export interface ArraySpec<T> extends Spec<readonly T[]> {
  readonly item: Spec<T>;
}

export function arrayOf<T>(item: Spec<T>, options: { minItems?: number } = {}): ArraySpec<T> {
  const min = options.minItems ?? 0;
  const each = `each item ${item.expected}`;
  const expected = min > 0 ? `a list of at least ${min} (${each})` : `a list (${each})`;
  return {
    expected,
    item,
    check(value, path, problems) {
      if (!Array.isArray(value) || value.length < min) {
        problems.push({ path, message: `expected ${expected}, got ${describe(value)}` });
        return undefined;
      }
      const out: T[] = [];
      let ok = true;
      value.forEach((v, i) => {
        const checked = item.check(v, `${path}[${i}]`, problems);
        if (checked === undefined) ok = false;
        else out.push(checked);
      });
      return ok ? out : undefined;
    },
  };
}

export interface ObjectSpec<S extends Shape> extends Spec<ObjectOf<S>> {
  readonly shape: S;
}

/** A mapping with exactly these keys: unknown keys are problems, absent ones take defaults. */
export function object<S extends Shape>(shape: S): ObjectSpec<S> {
  const expected = 'a mapping';
  return {
    expected,
    shape,
    check(value, path, problems) {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) {
        problems.push({ path, message: `expected ${expected}, got ${describe(value)}` });
        return undefined;
      }
      const input = value as Record<string, unknown>;
      const out: Record<string, unknown> = {};
      let ok = true;
      for (const key of Object.keys(input)) {
        if (!Object.hasOwn(shape, key)) {
          problems.push({ path: join(path, key), message: `unknown key (known keys: ${Object.keys(shape).join(', ')})` });
          ok = false;
        }
      }
      for (const [key, field] of Object.entries(shape)) {
        const at = join(path, key);
        if (input[key] === undefined || input[key] === null) {
          if (field.required) {
            problems.push({ path: at, message: `is required: expected ${field.spec.expected}` });
            ok = false;
          } else if (field.default !== undefined) out[key] = field.default;
          continue;
        }
        const checked = field.spec.check(input[key], at, problems);
        if (checked === undefined) ok = false;
        else out[key] = checked;
      }
      return ok ? (out as ObjectOf<S>) : undefined;
    },
  };
}

export interface UnionSpec<V extends Record<string, ObjectSpec<Shape>>> extends Spec<{ [K in keyof V]: Infer<V[K]> & { readonly type: K } }[keyof V]> {
  readonly variants: V;
}

/** Mappings told apart by their `type` key; each variant lists its other keys. */
export function byType<V extends Record<string, ObjectSpec<Shape>>>(variants: V): UnionSpec<V> {
  const types = Object.keys(variants);
  const expected = `a mapping with type ${types.map((t) => JSON.stringify(t)).join(' or ')}`;
  return {
    expected,
    variants,
    check(value, path, problems) {
      const type = value !== null && typeof value === 'object' ? (value as { type?: unknown }).type : undefined;
      if (typeof type !== 'string' || !Object.hasOwn(variants, type)) {
        problems.push({ path: join(path, 'type'), message: `expected one of ${types.map((t) => JSON.stringify(t)).join(', ')}, got ${describe(type)}` });
        return undefined;
      }
      const { type: _type, ...rest } = value as Record<string, unknown>;
      const checked = variants[type]!.check(rest, path, problems);
      return checked === undefined ? undefined : ({ type, ...checked } as never);
    },
  };
}

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

/** One documented key: its path (`http[].rules[].ttl`), what it takes, and its default. */
export interface KeyDoc {
  path: string;
  expected: string;
  required: boolean;
  default: string | undefined;
}

/** Every key of a spec, depth first, for the docs test and the README reference. */
export function describeSchema(spec: Spec<unknown>, path = ''): KeyDoc[] {
  const node = spec as Partial<ObjectSpec<Shape> & UnionSpec<Record<string, ObjectSpec<Shape>>> & ArraySpec<unknown>>;
  if (node.shape !== undefined) {
    return Object.entries(node.shape).flatMap(([key, field]) => {
      const at = join(path, key);
      const own: KeyDoc = { path: at, expected: field.spec.expected, required: field.required, default: formatDefault(field) };
      return [own, ...describeSchema(field.spec, at)];
    });
  }
  if (node.variants !== undefined) {
    return Object.entries(node.variants).flatMap(([type, variant]) => [
      { path: join(path, 'type'), expected: JSON.stringify(type), required: true, default: undefined },
      ...describeSchema(variant, path),
    ]);
  }
  return node.item === undefined ? [] : describeSchema(node.item, `${path}[]`);
}

function formatDefault(field: Field<unknown>): string | undefined {
  if (field.default === undefined) return undefined;
  return field.spec.format ? field.spec.format(field.default) : JSON.stringify(field.default);
}
