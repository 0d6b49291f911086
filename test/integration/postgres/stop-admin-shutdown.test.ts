/**
 * Issue 16 point 5 (the listener part): a stop ends every session by the shutdownGrace deadline,
 * and an idle session cut there is told why first, as PostgreSQL's own fast shutdown tells its
 * sessions: FATAL 57P01 "terminating connection due to administrator command"
 * (https://www.postgresql.org/docs/current/server-shutdown.html).
 */
import { describe, expect, it } from 'vitest';
import { connect, pgUnreachable, startPgSidecache } from '../../helpers/pg.js';

const unreachable = await pgUnreachable();

describe.skipIf(unreachable !== undefined)('stopping a postgres listener: admin shutdown', () => {
  it('sends FATAL 57P01 to an idle session cut at the deadline', async () => {
    const { server, port } = await startPgSidecache();
    const client = await connect(port);
    const failed = new Promise<Error & { code?: string; severity?: string }>((resolve) => client.on('error', resolve));
    expect((await client.query('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
    expect(await server.stop(100)).toEqual({ forced: true });
    const err = await failed;
    expect(err.code).toBe('57P01');
    expect(err.severity).toBe('FATAL');
    expect(err.message).toBe('terminating connection due to administrator command');
  });

  it('still stops by the deadline while a session waits on a query', async () => {
    const { server, port } = await startPgSidecache();
    const client = await connect(port);
    client.on('error', () => undefined);
    const sleeping = client.query('SELECT pg_sleep(30)').then(
      () => 'answered',
      () => 'cut',
    );
    // The session is not idle: it is cut without a 57P01 written into the middle of its answer.
    expect(await server.stop(100)).toEqual({ forced: true });
    expect(await sleeping).toBe('cut');
  });
});
