/**
 * Issue 16 point 7: a client refused past maxClientConnections (53300) is counted in
 * sidecache_connections_refused_total{protocol="postgres",reason="limit"}, so a limit that bites is seen.
 */
import { describe, expect, it } from 'vitest';
import { connect, pgUnreachable, withPgSidecache } from '../../helpers/pg.js';
import { metric } from '../../helpers/sidecache.js';

const unreachable = await pgUnreachable();

describe.skipIf(unreachable !== undefined)('postgres listener: refusals counted', () => {
  it('counts a client refused past maxClientConnections', async () => {
    await withPgSidecache(async (port, server) => {
      const first = await connect(port);
      try {
        await expect(connect(port)).rejects.toMatchObject({ code: '53300' });
        expect(await metric(server, 'sidecache_connections_refused_total', { protocol: 'postgres', listener: 'main', reason: 'limit' })).toBe(1);
      } finally {
        await first.end();
      }
    }, '    maxClientConnections: 1\n');
  });
});
