import { describe, expect, it } from 'vitest';
import { RouteTable } from '../../../../src/upstreams/http/rules.js';

describe('RouteTable: the memo of matched paths is bounded in bytes', () => {
  it('20,000 distinct 2,000-character paths keep it under 1 MiB, and matching stays right', () => {
    const table = new RouteTable([{ path: '/private/**', cache: false, cacheSetCookie: false }] as never, { ignoreRequestCacheControl: true });
    for (let i = 0; i < 20_000; i++) expect(table.match(`/u/${i}/${'p'.repeat(2000)}`).cache).toBe(true);
    expect(table.memoBytes).toBeLessThanOrEqual(1024 * 1024);
    expect(table.match('/private/x').cache).toBe(false);
    expect(table.match('/private/x').cache).toBe(false);
  });
});
