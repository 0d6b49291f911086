import { describe, expect, it } from 'vitest';
import { FrameSplitter, FramingError } from '../../../../src/upstreams/postgres/framing.js';
import { bind, describePortal, execute, parse, query, startup, sync } from '../../../helpers/pg-bytes.js';

const fixtures = [
  Buffer.concat([parse('s1', 'SELECT $1::int'), bind('s1', ['42']), describePortal(), execute(), sync()]),
  Buffer.concat([query('SELECT 1'), query(''), sync()]),
  Buffer.concat([bind('', [null, 'x'.repeat(300)]), execute('', 5)]),
];

describe('FrameSplitter', () => {
  it('yields the same frames however the stream is split, at every byte offset', () => {
    for (const stream of fixtures) {
      const whole = new FrameSplitter({ typed: true }).push(stream).map((f) => [f.code, f.bytes.toString('hex')]);
      expect(Buffer.concat(new FrameSplitter({ typed: true }).push(stream).map((f) => f.bytes))).toEqual(stream);
      for (let cut = 1; cut < stream.length; cut++) {
        const splitter = new FrameSplitter({ typed: true });
        const parts = [...splitter.push(stream.subarray(0, cut)), ...splitter.push(stream.subarray(cut))];
        expect(parts.map((f) => [f.code, f.bytes.toString('hex')])).toEqual(whole);
      }
    }
  });

  it('also byte by byte', () => {
    const stream = fixtures[0]!;
    const splitter = new FrameSplitter({ typed: true });
    const frames = [...stream].flatMap((byte) => splitter.push(Buffer.from([byte])));
    expect(frames.map((f) => String.fromCharCode(f.code)).join('')).toBe('PBDES');
  });

  it('splits one untyped startup message at a time, then typed ones once told', () => {
    const splitter = new FrameSplitter({ typed: false });
    const frames = splitter.push(Buffer.concat([startup({ user: 'u' }), query('SELECT 1')]));
    expect(frames).toHaveLength(1);
    expect(frames[0]!.code).toBe(0);
    splitter.setTyped();
    expect(splitter.push(Buffer.alloc(0)).map((f) => f.code)).toEqual([0x51]);
  });

  it('refuses lengths no message can have', () => {
    expect(() => new FrameSplitter({ typed: true }).push(Buffer.from([0x51, 0, 0, 0, 3]))).toThrow(FramingError);
    expect(() => new FrameSplitter({ typed: true, limit: 100 }).push(Buffer.from([0x51, 0, 0, 1, 0]))).toThrow(/invalid message length 256/);
  });
});
