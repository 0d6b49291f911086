import { describe, expect, it } from 'vitest';
import { decideRange, partialFields, type Representation } from '../../../../src/upstreams/http/range.js';

const rep: Representation = { status: 200, length: 10, etag: '"v1"', lastModified: 'Wed, 01 Jan 2025 00:00:00 GMT' };
const decide = (range: string, extra: Record<string, string> = {}, r: Representation = rep) => decideRange({ range, ...extra }, r);

describe('decideRange (RFC 9110 §14)', () => {
  it.each([
    ['bytes=0-0', 0, 0],
    ['bytes=2-5', 2, 5],
    ['bytes=7-', 7, 9],
    ['bytes=8-100', 8, 9],
    ['bytes=-3', 7, 9],
    ['bytes=-30', 0, 9],
    ['BYTES = 1-2', 1, 2],
    ['bytes=1-2,', 1, 2],
  ])('%s is bytes %i-%i', (range, start, end) => {
    expect(decide(range)).toEqual({ kind: 'partial', start, end });
  });

  it.each(['bytes=10-', 'bytes=10-20', 'bytes=-0'])('%s cannot be satisfied', (range) => {
    expect(decide(range)).toEqual({ kind: 'unsatisfiable' });
  });

  it.each(['items=0-1', 'bytes=5-2', 'bytes=x-', 'bytes=-', 'bytes=', '0-1'])('%s is ignored', (range) => {
    expect(decide(range)).toEqual({ kind: 'full', why: 'RANGE-IGNORED' });
  });

  it('several ranges get the full response, as does a stored status other than 200', () => {
    expect(decide('bytes=0-1,3-4')).toEqual({ kind: 'full', why: 'MULTIPLE-RANGES' });
    expect(decide('bytes=0-1', {}, { ...rep, status: 203 })).toEqual({ kind: 'full', why: 'RANGE-IGNORED' });
  });

  it('If-Range holds for the strong stored ETag or the exact stored Last-Modified only', () => {
    expect(decide('bytes=0-1', { 'if-range': '"v1"' }).kind).toBe('partial');
    expect(decide('bytes=0-1', { 'if-range': rep.lastModified! }).kind).toBe('partial');
    for (const v of ['"v2"', 'W/"v1"', 'Thu, 02 Jan 2025 00:00:00 GMT'])
      expect(decide('bytes=0-1', { 'if-range': v })).toEqual({ kind: 'full', why: 'IF-RANGE-MISMATCH' });
    expect(decide('bytes=0-1', { 'if-range': 'W/"v1"' }, { ...rep, etag: 'W/"v1"' })).toEqual({ kind: 'full', why: 'IF-RANGE-MISMATCH' });
    expect(decide('bytes=0-1', { 'if-range': '"v1"' }, { ...rep, etag: undefined })).toEqual({ kind: 'full', why: 'IF-RANGE-MISMATCH' });
  });

  it("partialFields sets the part's length and Content-Range before the two trailing slots", () => {
    const fields = ['content-type', 'text/plain', 'content-length', '10', 'age', '', 'cache-status', ''];
    expect(partialFields(fields, 2, 5, 10)).toEqual([
      'content-type',
      'text/plain',
      'content-length',
      '4',
      'content-range',
      'bytes 2-5/10',
      'age',
      '',
      'cache-status',
      '',
    ]);
  });
});
