import { describe, expect, it } from 'vitest';
import { serverSupport, UNSUPPORTED_SERVER, unsupportedServer } from '../../../../src/upstreams/postgres/server-versions.js';

describe('supported PostgreSQL versions', () => {
  it('supports PostgreSQL 13 to 18, refuses older, and says a newer one is untested', () => {
    expect(serverSupport(12)).toEqual({ supported: false, note: 'not supported: older than PostgreSQL 13, the oldest sidecache supports' });
    expect(serverSupport(13).supported).toBe(true);
    expect(serverSupport(18)).toEqual({ supported: true, note: 'supported (13 to 18)' });
    expect(serverSupport(19)).toEqual({ supported: true, note: 'newer than PostgreSQL 18, the newest sidecache is tested with' });
  });

  it('reads the server_version a server reports at startup', () => {
    expect(unsupportedServer('9.6.24')).toMatchObject({
      code: UNSUPPORTED_SERVER,
      message: 'PostgreSQL 9.6.24 is older than 13, the oldest sidecache supports',
    });
    expect(unsupportedServer('12.20 (Debian 12.20-1)')).toMatchObject({ code: UNSUPPORTED_SERVER });
    expect(unsupportedServer('13.0')).toBeUndefined();
    expect(unsupportedServer('16beta1')).toBeUndefined();
    expect(unsupportedServer('15.19 (Debian 15.19-0+deb12u1)')).toBeUndefined();
    expect(unsupportedServer(undefined)).toBeUndefined();
  });
});
