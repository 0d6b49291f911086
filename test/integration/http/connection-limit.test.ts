/**
 * Issue 16 point 7: an HTTP listener's client connections are bounded (`maxConnections`; Node closes
 * the ones past it as it accepts them), each refusal is counted, and the connections open are a
 * gauge per listener (sidecache_client_connections{protocol="http"}).
 */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { counting, useHttpSetup } from '../../helpers/http-setup.js';
import { metric } from '../../helpers/sidecache.js';
import { waitFor } from '../../helpers/wait.js';

const setup = useHttpSetup();

/** A connection that sends nothing yet; resolves once connected. */
function openSocket(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

describe('http listener: client connections', () => {
  it('counts open connections and closes those past maxConnections at once', async () => {
    const { server } = await setup(counting(), '    maxConnections: 2\n');
    const listener = server.httpListeners[0]!;
    const open = await Promise.all([openSocket(listener.address.port), openSocket(listener.address.port)]);
    const gauge = () => metric(server, 'sidecache_client_connections', { protocol: 'http', listener: 'api' });
    await waitFor(async () => (await gauge()) === 2, 'two connections counted');
    const third = await openSocket(listener.address.port);
    third.on('error', () => undefined);
    await new Promise((resolve) => third.once('close', resolve));
    expect(await metric(server, 'sidecache_connections_refused_total', { protocol: 'http', listener: 'api', reason: 'limit' })).toBe(1);
    for (const socket of open) socket.destroy();
    await waitFor(async () => (await gauge()) === 0, 'the gauge to drop');
    // Below the limit again: a request is served.
    expect((await fetch(`${listener.url}/x`)).status).toBe(200);
  });
});
