import { describe, expect, it } from 'vitest';
import { freshenHeaders } from '../../../../src/upstreams/http/policy.js';

describe('freshenHeaders (RFC 9111 §4.3.4)', () => {
  const stored = {
    'cache-control': 'max-age=10',
    date: 'Mon, 23 Nov 2026 00:00:00 GMT',
    etag: '"v1"',
    'content-length': '5',
    'content-encoding': 'gzip',
    'surrogate-key': 'a b',
  };

  it("replaces the stored fields the 304 carries, and keeps the stored body's own fields", () => {
    const notModified = {
      'cache-control': 'max-age=60',
      date: 'Tue, 24 Nov 2026 00:00:00 GMT',
      etag: '"v1"',
      'content-length': '0',
      'content-encoding': 'br',
    };
    expect(freshenHeaders(stored, notModified)).toEqual({
      'cache-control': 'max-age=60',
      date: 'Tue, 24 Nov 2026 00:00:00 GMT',
      etag: '"v1"',
      'content-length': '5',
      'content-encoding': 'gzip',
      'surrogate-key': 'a b',
    });
  });

  it('does not add fields only the 304 carries, and leaves both inputs as they were', () => {
    const notModified = { 'x-new': '1', expires: 'Tue, 24 Nov 2026 00:01:00 GMT' };
    const before = { ...stored };
    expect(freshenHeaders(stored, notModified)).toEqual(stored);
    expect(stored).toEqual(before);
    expect(notModified).toEqual({ 'x-new': '1', expires: 'Tue, 24 Nov 2026 00:01:00 GMT' });
  });
});
