import { describe, expect, it } from 'vitest';
import { Capture } from '../../../../src/upstreams/postgres/capture.js';
import { type Frame, FrameSplitter } from '../../../../src/upstreams/postgres/framing.js';
import { bindComplete, commandComplete, dataRow, readyForQuery } from '../../../helpers/pg-bytes.js';

const IDLE = 0x49;

describe('Capture', () => {
  it('stores a small result in memory of its own, not a slice of a shared pool slab a long-lived entry would pin', () => {
    const frames = new FrameSplitter({ typed: true }).push(
      Buffer.concat([bindComplete(), dataRow('one row'), commandComplete('SELECT 1'), readyForQuery('I')]),
    );
    const capture = new Capture(1 << 20);
    for (const frame of frames) capture.add(frame);
    const stored = capture.result(IDLE)!;
    expect(stored.equals(Buffer.concat(frames.map((f) => f.bytes)))).toBe(true);
    expect([stored.byteOffset, stored.buffer.byteLength]).toEqual([0, stored.length]);
  });

  it('stores a row that came in parts as the same bytes, and refuses one past the limit however it came', () => {
    const row = dataRow('x'.repeat(200_000));
    const stream = Buffer.concat([bindComplete(), row, commandComplete('SELECT 1'), readyForQuery('I')]);
    const splitter = new FrameSplitter({ typed: true });
    const frames: Frame[] = [];
    for (let at = 0; at < stream.length; at += 65536) frames.push(...splitter.push(stream.subarray(at, at + 65536)), ...splitter.release(() => true));
    expect(frames.filter((f) => f.part !== undefined).length).toBeGreaterThan(2);
    const capture = new Capture(1 << 20);
    const small = new Capture(100_000);
    for (const frame of frames) {
      capture.add(frame);
      small.add(frame);
    }
    expect(capture.result(IDLE)!.equals(stream)).toBe(true);
    expect(small.result(IDLE)).toBeUndefined();
  });
});
