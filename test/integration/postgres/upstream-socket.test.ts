import net from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { connectUpstream } from '../../../src/upstreams/postgres/upstream-socket.js';
import { fields, readMessages, startup } from '../../helpers/pg-bytes.js';
import { rawSocket } from '../../helpers/pg.js';
import { startSidecache } from '../../helpers/sidecache.js';

/** A TCP server on loopback that does `onData` with what a client sends first (an SSLRequest). */
async function fakeServer(onData: (socket: net.Socket) => void): Promise<number> {
  const server = net.createServer((socket) => socket.once('data', () => onData(socket)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as net.AddressInfo).port;
}

const refusesTls = (socket: net.Socket) => socket.end('N');
const hangsUp = (socket: net.Socket) => socket.end();
const target = (port: number, sslmode: 'require' | 'prefer') => ({ host: '127.0.0.1', port, sslmode, ca: undefined, connectTimeoutMs: 2000 });

describe('connecting to the upstream', () => {
  it('fails with SC_ERR_UPSTREAM_CONNECT when sslmode requires TLS the server does not offer', async () => {
    const port = await fakeServer(refusesTls);
    await expect(connectUpstream(target(port, 'require'))).rejects.toMatchObject({
      name: 'SidecacheError',
      code: 'SC_ERR_UPSTREAM_CONNECT',
      message: 'the server does not offer TLS (sslmode=require)',
    });
  });

  it('fails with SC_ERR_UPSTREAM_CONNECT when the server closes during TLS negotiation', async () => {
    const port = await fakeServer(hangsUp);
    await expect(connectUpstream(target(port, 'prefer'))).rejects.toMatchObject({
      code: 'SC_ERR_UPSTREAM_CONNECT',
      message: 'the server closed the connection during TLS negotiation',
    });
  });

  it('tells the client why, in a FATAL 08006', async () => {
    const port = await fakeServer(refusesTls);
    const server = await startSidecache(`postgres:\n  - { name: tls, listen: "127.0.0.1:0", upstream: "postgres://127.0.0.1:${port}?sslmode=require" }\n`);
    onTestFinished(() => server.stop(100).then(() => undefined));
    const socket = await rawSocket(server.postgresListeners[0]!.address.port);
    const answer = await new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('close', () => resolve(Buffer.concat(chunks)));
      socket.write(startup({ user: 'x', database: 'y' }));
    });
    const error = readMessages(answer).find((m) => m.code === 'E');
    expect(fields(error!.body)).toMatchObject({
      S: 'FATAL',
      C: '08006',
      M: `sidecache cannot connect to the upstream PostgreSQL at 127.0.0.1:${port}: the server does not offer TLS (sslmode=require)`,
    });
  });
});
