import { afterEach, describe, expect, it } from 'vitest';
import { type Frame, FrameSplitter, FramingError } from '../../../../src/upstreams/postgres/framing.js';
import {
  bind,
  bindComplete,
  commandComplete,
  dataRow,
  describePortal,
  execute,
  parse,
  query,
  readyForQuery,
  startup,
  sync,
} from '../../../helpers/pg-bytes.js';

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

  it('also in many chunks: every chunk size, and three pieces cut at every pair of offsets', () => {
    for (const stream of fixtures) {
      const whole = new FrameSplitter({ typed: true }).push(stream).map((f) => [f.code, f.bytes.toString('hex')]);
      for (let size = 1; size < stream.length; size++) {
        const splitter = new FrameSplitter({ typed: true });
        const frames = [];
        for (let at = 0; at < stream.length; at += size) frames.push(...splitter.push(stream.subarray(at, at + size)));
        expect(frames.map((f) => [f.code, f.bytes.toString('hex')])).toEqual(whole);
        expect(splitter.buffered).toBe(0);
      }
    }
    const stream = fixtures[0]!;
    const whole = new FrameSplitter({ typed: true }).push(stream).map((f) => f.bytes.toString('hex'));
    for (let i = 1; i < stream.length; i++) {
      for (let j = i; j < stream.length; j++) {
        const splitter = new FrameSplitter({ typed: true });
        const frames = [stream.subarray(0, i), stream.subarray(i, j), stream.subarray(j)].flatMap((part) => splitter.push(part));
        expect(frames.map((f) => f.bytes.toString('hex'))).toEqual(whole);
      }
    }
  });

  it('keeps a partial message with what follows it and reports the bytes held', () => {
    const stream = fixtures[2]!;
    const splitter = new FrameSplitter({ typed: true });
    expect(splitter.push(stream.subarray(0, 3))).toEqual([]);
    expect(splitter.buffered).toBe(3);
    expect(splitter.push(stream.subarray(3, 20))).toEqual([]);
    expect(splitter.buffered).toBe(20);
    expect(splitter.push(stream.subarray(20)).map((f) => String.fromCharCode(f.code))).toEqual(['B', 'E']);
    expect(splitter.buffered).toBe(0);
  });

  it('splits a startup message and the typed messages after it at every byte offset', () => {
    const stream = Buffer.concat([startup({ user: 'u', database: 'd' }), query('SELECT 1'), sync()]);
    for (let cut = 1; cut < stream.length; cut++) {
      const splitter = new FrameSplitter({ typed: false });
      const codes: number[] = [];
      for (const part of [stream.subarray(0, cut), stream.subarray(cut)]) {
        let frames = splitter.push(part);
        while (frames.length > 0 && frames[0]!.code === 0) {
          codes.push(0);
          splitter.setTyped();
          frames = [...frames.slice(1), ...splitter.push(Buffer.alloc(0))];
        }
        codes.push(...frames.map((f) => f.code));
      }
      expect(codes).toEqual([0, 0x51, 0x53]);
    }
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

  it('refuses a length over the limit as soon as a header split across chunks is in, before the body comes', () => {
    const splitter = new FrameSplitter({ typed: true, limit: 100 });
    expect(splitter.push(Buffer.from([0x42, 0]))).toEqual([]);
    expect(splitter.push(Buffer.from([0, 1]))).toEqual([]);
    expect(() => splitter.push(Buffer.from([0]))).toThrow(/invalid message length 256/);
  });
});

describe('FrameSplitter.release: a message let go in parts as it arrives', () => {
  const row = dataRow('r'.repeat(3000));
  const stream = Buffer.concat([bindComplete(), row, commandComplete('SELECT 1'), readyForQuery('I')]);
  const DATA_ROW = 0x44;

  it('at every pair of cuts: the parts make the message, the frames around it come whole and in order', () => {
    for (let i = 1; i < stream.length; i += 7) {
      for (let j = i; j < stream.length; j += 13) {
        const splitter = new FrameSplitter({ typed: true });
        const out: Frame[] = [];
        for (const piece of [stream.subarray(0, i), stream.subarray(i, j), stream.subarray(j)])
          out.push(...splitter.push(piece), ...splitter.release((code) => code === DATA_ROW));
        expect(Buffer.concat(out.map((f) => f.bytes)).equals(stream)).toBe(true);
        const whole = out.filter((f) => f.part === undefined).map((f) => String.fromCharCode(f.code));
        const parts = out.filter((f) => f.part !== undefined);
        // The row came whole when one piece held it all, else in parts (first, then more), never both.
        expect(whole).toEqual(parts.length > 0 ? ['2', 'C', 'Z'] : ['2', 'D', 'C', 'Z']);
        if (parts.length > 0) {
          expect(parts.every((f) => f.code === DATA_ROW)).toBe(true);
          expect(parts.map((f) => f.part)).toEqual(['first', ...parts.slice(1).map(() => 'more')]);
          expect(Buffer.concat(parts.map((f) => f.bytes)).equals(row)).toBe(true);
        }
        expect(splitter.buffered).toBe(0);
      }
    }
  });

  it('lets nothing go before the header is in, or when the caller declines, and holds it whole then', () => {
    const splitter = new FrameSplitter({ typed: true });
    expect(splitter.push(row.subarray(0, 4))).toEqual([]);
    expect(splitter.release(() => true)).toEqual([]);
    expect(splitter.push(row.subarray(4, 100))).toEqual([]);
    const seen: [number, number][] = [];
    expect(splitter.release((code, length) => (seen.push([code, length]), false))).toEqual([]);
    expect(seen).toEqual([[DATA_ROW, row.length]]);
    expect(splitter.push(row.subarray(100)).map((f) => [f.code, f.part, f.bytes.length])).toEqual([[DATA_ROW, undefined, row.length]]);
  });
});

describe('FrameSplitter, large messages', () => {
  const concat = Buffer.concat;
  /** From now on, counts the calls of Buffer.concat and the bytes they make (without keeping the buffers). */
  function countJoins(): { calls: number; bytes: number } {
    const joins = { calls: 0, bytes: 0 };
    Buffer.concat = (list: readonly Uint8Array[], totalLength?: number): Buffer<ArrayBuffer> => {
      const joined = concat(list, totalLength);
      joins.calls++;
      joins.bytes += joined.length;
      return joined;
    };
    return joins;
  }
  afterEach(() => {
    Buffer.concat = concat;
  });

  /** A Bind of one parameter of `bytes` bytes, followed by a Sync. */
  function bigBind(bytes: number): Buffer {
    const value = Buffer.alloc(bytes, 0x61);
    value.write('head', 0);
    value.write('tail', bytes - 4);
    return Buffer.concat([bind('', [value.toString('latin1')]), sync()]);
  }

  it('joins a 16 MiB message that came in 64 KiB chunks once, its header split too: each byte copied at most once', () => {
    const stream = bigBind(16 * 1024 * 1024);
    const joins = countJoins();
    const splitter = new FrameSplitter({ typed: true });
    const frames = [...splitter.push(stream.subarray(0, 3))];
    for (let at = 3; at < stream.length; at += 65536) frames.push(...splitter.push(stream.subarray(at, at + 65536)));
    expect(joins).toEqual({ calls: 1, bytes: stream.length });
    expect(frames.map((f) => String.fromCharCode(f.code))).toEqual(['B', 'S']);
    expect(concat([frames[0]!.bytes, frames[1]!.bytes]).equals(stream)).toBe(true);
    expect(splitter.buffered).toBe(0);
  });

  it('holds the chunks of a message, not one growing copy, until its last byte', () => {
    const stream = bigBind(1024 * 1024);
    const joins = countJoins();
    const splitter = new FrameSplitter({ typed: true });
    const end = stream.length - 10;
    for (let at = 0; at < end; at += 4096) expect(splitter.push(stream.subarray(at, Math.min(at + 4096, end)))).toEqual([]);
    expect(joins.calls).toBe(0);
    expect(splitter.buffered).toBe(end);
    expect(splitter.push(stream.subarray(end)).map((f) => f.bytes.length)).toEqual([stream.length - 5, 5]);
    expect(joins).toEqual({ calls: 1, bytes: stream.length });
  });
});
