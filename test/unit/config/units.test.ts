import { describe, expect, it } from 'vitest';
import { formatDuration, formatSize, parseDuration, parseSize } from '../../../src/config/units.js';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1d', 86_400_000],
    ['1.5s', 1500],
    [' 2s ', 2000],
    ['0s', 0],
    [0, 0],
  ])('%j is %d ms', (input, ms) => {
    expect(parseDuration(input)).toEqual({ ok: true, value: ms });
  });

  it.each([['abc'], ['30'], [30], ['-1s'], ['1w'], ['1 s'], ['s'], [''], [null], [true], ['9999999999999999d']])('refuses %j', (input) => {
    expect(parseDuration(input)).toEqual({ ok: false });
  });
});

describe('parseSize', () => {
  it.each([
    ['512B', 512],
    ['64KiB', 65_536],
    ['256MiB', 268_435_456],
    ['1GiB', 1_073_741_824],
    ['1TiB', 1024 ** 4],
    ['1.5KiB', 1536],
    ['10 MiB', 10 * 1024 ** 2],
    ['1kB', 1000],
    ['2MB', 2_000_000],
    [4096, 4096],
    [0, 0],
  ])('%j is %d bytes', (input, bytes) => {
    expect(parseSize(input)).toEqual({ ok: true, value: bytes });
  });

  it.each([['64'], ['64mb'], ['-1MiB'], [-5], [1.5], ['1PiB'], ['MiB'], [null], ['99999999999999TiB']])('refuses %j', (input) => {
    expect(parseSize(input)).toEqual({ ok: false });
  });
});

describe('formatting', () => {
  it('spells durations and sizes exactly', () => {
    expect([0, 500, 1500, 30_000, 3_600_000, 86_400_000].map(formatDuration)).toEqual(['0s', '500ms', '1500ms', '30s', '1h', '1d']);
    expect([0, 512, 65_536, 8 * 1024 ** 2].map(formatSize)).toEqual(['0B', '512B', '64KiB', '8MiB']);
  });
});
