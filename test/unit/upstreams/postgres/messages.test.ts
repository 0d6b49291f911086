import { describe, expect, it } from 'vitest';
import { bindReadsClock, decodeBind, hasBindNames } from '../../../../src/upstreams/postgres/messages.js';
import { bind } from '../../../helpers/pg-bytes.js';

const readsClock = (...params: (string | null)[]) => {
  const bytes = bind('', params);
  return bindReadsClock(bytes, decodeBind(bytes).restAt);
};

describe('bindReadsClock', () => {
  it('finds a time word in any case, anywhere in a long value, and nothing in values without one', () => {
    const filler = 'abc '.repeat(1 << 20);
    for (const word of ['now', 'TODAY', 'Tomorrow', 'yesterday']) {
      expect(readsClock(word)).toBe(true);
      expect(readsClock(null, `${filler}${word}`)).toBe(true);
      expect(readsClock(`${filler} ${word} ${filler}`)).toBe(true);
    }
    expect(readsClock(filler, 'snow', 'nowhere', 'yesterdays', 'way')).toBe(false);
    expect(readsClock(`${filler}w`, `${filler}Y`)).toBe(false);
  });

  it("finds a time word run into digits or punctuation ('now_', '_today', 'today12:00'), which the date/time input reads as the clock", () => {
    for (const value of ['now_', '_today', 'today12:00', '{tomorrow_}', `${'x'.repeat(1 << 20)}.yesterday`]) expect(readsClock(value), value).toBe(true);
  });
});

describe('hasBindNames', () => {
  it('says whether the start of a Bind holds its portal and statement names', () => {
    const bytes = bind('stmt', ['x'], 'portal');
    const statementEnd = bytes.indexOf(0, bytes.indexOf(0, 5) + 1);
    expect(hasBindNames(bytes.subarray(0, statementEnd))).toBe(false);
    expect(hasBindNames(bytes.subarray(0, statementEnd + 1))).toBe(true);
    expect(hasBindNames(bytes.subarray(0, 6))).toBe(false);
  });
});
