import { describe, expect, it } from 'vitest';
import { connect, pgUnreachable, startPgSidecache } from '../../helpers/pg.js';

const unreachable = await pgUnreachable();

describe.skipIf(unreachable !== undefined)('stopping a postgres listener', () => {
  it('stops at once without sessions, and closes open sessions at the grace deadline', async () => {
    const idle = await startPgSidecache();
    expect(await idle.server.stop(5000)).toEqual({ forced: false });

    const busy = await startPgSidecache();
    const client = await connect(busy.port);
    const ended = new Promise<void>((resolve) => client.on('error', () => resolve()).on('end', () => resolve()));
    expect((await client.query('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
    // The session stays open through the grace: only the deadline ends it, and the stop says so.
    expect(await busy.server.stop(200)).toEqual({ forced: true });
    await ended;
  });
});
