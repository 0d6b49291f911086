import type { Bytes, Millis } from '../units.js';

const DURATION_UNITS: Record<string, Millis> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const SIZE_UNITS: Record<string, Bytes> = {
  B: 1,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
  TiB: 1024 ** 4,
  kB: 1000,
  MB: 1000 ** 2,
  GB: 1000 ** 3,
};
const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;
const SIZE = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|TiB|kB|MB|GB)$/;

/** A parsed value, or what was wrong with the input (phrased to follow "expected …, got …"). */
export type Parsed<T> = { ok: true; value: T } | { ok: false };

/**
 * `500ms`, `30s`, `5m`, `1h`, `1d` (and decimals such as `1.5s`) into milliseconds. The number 0
 * is accepted as "no time"; other bare numbers are refused, since their unit is anybody's guess.
 */
export function parseDuration(input: unknown): Parsed<Millis> {
  if (input === 0) return { ok: true, value: 0 };
  if (typeof input !== 'string') return { ok: false };
  const match = DURATION.exec(input.trim());
  if (match === null) return { ok: false };
  const value = Math.round(Number(match[1]) * DURATION_UNITS[match[2]!]!);
  return Number.isSafeInteger(value) ? { ok: true, value } : { ok: false };
}

/** `512B`, `64KiB`, `256MiB`, `1GiB` (IEC, powers of 1024; `kB`/`MB`/`GB` are powers of 1000). A bare integer is bytes. */
export function parseSize(input: unknown): Parsed<Bytes> {
  if (typeof input === 'number') return Number.isSafeInteger(input) && input >= 0 ? { ok: true, value: input } : { ok: false };
  if (typeof input !== 'string') return { ok: false };
  const match = SIZE.exec(input.trim());
  if (match === null) return { ok: false };
  const value = Math.floor(Number(match[1]) * SIZE_UNITS[match[2]!]!);
  return Number.isSafeInteger(value) ? { ok: true, value } : { ok: false };
}

/** The shortest exact spelling of a duration, for help text and logs. */
export function formatDuration(ms: Millis): string {
  if (ms === 0) return '0s';
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const size = DURATION_UNITS[unit]!;
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** The shortest exact IEC spelling of a size. */
export function formatSize(bytes: Bytes): string {
  for (const unit of ['TiB', 'GiB', 'MiB', 'KiB'] as const) {
    const size = SIZE_UNITS[unit]!;
    if (bytes !== 0 && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return `${bytes}B`;
}
