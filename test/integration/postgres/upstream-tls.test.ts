/**
 * TLS from sidecache to the upstream, per the upstream URL's sslmode, sslrootcert, sslcert and
 * sslkey, against a throwaway cluster with ssl=on whose certificate names `localhost` only.
 * (https://www.postgresql.org/docs/current/libpq-ssl.html)
 */
import { describe, expect, it } from 'vitest';
import pg from 'pg';
import { clusterUnavailable, useCluster } from '../../helpers/pg-cluster.js';
import { startSidecache } from '../../helpers/sidecache.js';

const unavailable = clusterUnavailable();

describe.skipIf(unavailable !== undefined)('postgres listener: TLS to the upstream', () => {
  const cluster = useCluster({ auth: 'scram-sha-256', ssl: true, hba: ['hostssl all certuser 127.0.0.1/32 cert'] });

  /** What the upstream says of the TLS of the connection sidecache opened for a client, or the client's error. */
  async function through(host: string, params: string, user = 'postgres'): Promise<{ ssl: boolean; client_dn: string | null }> {
    const url = `postgres://${host}:${cluster.port}/postgres?${params}`;
    const server = await startSidecache(`postgres:\n  - { name: main, listen: "127.0.0.1:0", upstream: "${url}" }\n`);
    const client = new pg.Client({
      host: '127.0.0.1',
      port: server.postgresListeners[0]!.address.port,
      user,
      database: 'postgres',
      ...(user === 'postgres' && { password: cluster.password }),
    });
    try {
      await client.connect();
      const { rows } = await client.query<{ ssl: boolean; client_dn: string | null }>('SELECT ssl, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
      return rows[0]!;
    } finally {
      await client.end().catch(() => undefined);
      await server.stop(100);
    }
  }

  const ca = () => `sslrootcert=${cluster.pki!.caFile}`;
  const otherCa = () => `sslrootcert=${cluster.pki!.otherCaFile}`;

  it('sslmode=disable does not use TLS; prefer uses it when the server offers it', async () => {
    expect(await through('127.0.0.1', 'sslmode=disable')).toEqual({ ssl: false, client_dn: null });
    expect(await through('127.0.0.1', 'sslmode=prefer')).toEqual({ ssl: true, client_dn: null });
  });

  it('sslmode=require uses TLS without checking the certificate', async () => {
    expect(await through('127.0.0.1', 'sslmode=require')).toEqual({ ssl: true, client_dn: null });
  });

  it('sslmode=require with sslrootcert checks the certificate, as libpq does (like verify-ca)', async () => {
    expect(await through('127.0.0.1', `sslmode=require&${ca()}`)).toMatchObject({ ssl: true });
    await expect(through('127.0.0.1', `sslmode=require&${otherCa()}`)).rejects.toMatchObject({
      code: '08006',
      message: expect.stringMatching(
        /: the server's certificate is not trusted \(sslmode=require with sslrootcert\): self-signed certificate in certificate chain$/,
      ),
    });
  });

  it('sslmode=verify-ca trusts a certificate of sslrootcert whatever its name, and refuses one of another CA with 08006', async () => {
    expect(await through('127.0.0.1', `sslmode=verify-ca&${ca()}`)).toMatchObject({ ssl: true });
    await expect(through('127.0.0.1', `sslmode=verify-ca&${otherCa()}`)).rejects.toMatchObject({
      code: '08006',
      message: expect.stringMatching(
        new RegExp(
          `^sidecache cannot connect to the upstream PostgreSQL at 127\\.0\\.0\\.1:${cluster.port}: the server's certificate is not trusted \\(sslmode=verify-ca\\): self-signed certificate in certificate chain$`,
        ),
      ),
    });
  });

  it('sslmode=verify-full also checks the host name against the certificate', async () => {
    expect(await through('localhost', `sslmode=verify-full&${ca()}`)).toMatchObject({ ssl: true });
    await expect(through('127.0.0.1', `sslmode=verify-full&${ca()}`)).rejects.toMatchObject({
      code: '08006',
      message: expect.stringMatching(/: the server's certificate does not name 127\.0\.0\.1 \(sslmode=verify-full\): .*not in the cert's list/),
    });
  });

  it('presents the client certificate of sslcert/sslkey: a `cert` pg_hba line logs in the user it names', async () => {
    await cluster.admin('CREATE ROLE certuser LOGIN');
    const { cert, key } = cluster.pki!.clientCert('certuser');
    expect(await through('localhost', `sslmode=verify-full&${ca()}&sslcert=${cert}&sslkey=${key}`, 'certuser')).toEqual({
      ssl: true,
      client_dn: '/CN=certuser',
    });
    // Without it, PostgreSQL's own refusal reaches the client.
    await expect(through('localhost', `sslmode=verify-full&${ca()}`, 'certuser')).rejects.toMatchObject({ code: '28000' });
  });
});
