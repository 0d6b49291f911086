/** Issue 18 point 2: what GET /live gives the live page (the page itself is tested in a browser by live-page.test.ts). */
import { describe, expect, it } from 'vitest';
import { counting, useHttpSetup } from '../helpers/http-setup.js';

const setup = useHttpSetup();
const SECRET = 'sekr3t-live';

describe('GET /live', () => {
  it('has the hit ratio of the last minute, what each invalidation named and removed, bus states, upstream errors and the top entries', async () => {
    const { server, base } = await setup(
      counting(),
      '',
      'invalidation:\n  - { type: redis, url: "redis://127.0.0.1:1", heartbeat: 1s, whileDown: "ttl:1h" }\n',
    );
    for (const path of [`/a?k=${SECRET}`, `/a?k=${SECRET}`, `/a?k=${SECRET}`, '/b']) await (await fetch(base + path)).text();
    await fetch(`${server.adminUrl}/invalidate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"tags":["nothing","users"],"prefixes":["/b"]}',
    });
    const live = (await (await fetch(`${server.adminUrl}/live`)).json()) as Record<string, unknown>;
    expect(live.lastMinute).toMatchObject({ overall: 0.5, listeners: { api: 0.5 } });
    expect(live.invalidations).toEqual([
      { time: expect.any(String) as unknown, source: 'admin', removed: 1, named: { tags: ['nothing', 'users'], prefixes: ['/b'] } },
    ]);
    expect(live.buses).toEqual([{ name: server.buses[0]!.name, connected: false, reason: expect.any(String) as unknown }]);
    expect(live.upstreamErrors).toEqual([]);
    const top = live.topByHits as { key: { url: string; queryHidden?: boolean }; hits: number }[];
    expect(top[0]).toMatchObject({ key: { url: '/a', queryHidden: true }, hits: 2 });
    expect(JSON.stringify(live)).not.toContain(SECRET);
  });

  it('lists upstream errors by listener and reason', async () => {
    const { server, base, origin } = await setup(counting());
    await origin.close();
    expect((await fetch(`${base}/x`)).status).toBe(502);
    const live = (await (await fetch(`${server.adminUrl}/live`)).json()) as Record<string, unknown>;
    expect(live.upstreamErrors).toEqual([{ protocol: 'http', listener: 'api', reason: 'connect', count: 1 }]);
  });
});
