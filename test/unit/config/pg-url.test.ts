import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { parsePgUrl, PgUrlError, SSL_MODES } from '../../../src/config/pg-url.js';
import type { ConfigError } from '../../../src/errors.js';
import { hasOpenssl, makePki } from '../../helpers/tls.js';

function problemsOf(text: string): string[] {
  try {
    parseConfig(text, 'test.yaml', {});
  } catch (err) {
    return (err as ConfigError).problems.map((p) => `${p.path}: ${p.message}`);
  }
  throw new Error('expected the configuration to be refused');
}

const listener = (upstream: string, extra = '') => `postgres:\n  - { name: main, listen: "127.0.0.1:0", upstream: "${upstream}"${extra} }\n`;
const bus = (url: string) => `invalidation:\n  - { type: postgres, url: "${url}" }\n`;

const rootFile = join(mkdtempSync(join(tmpdir(), 'sidecache-pg-url-')), 'root.crt');
writeFileSync(rootFile, '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n');
/** verify-ca needs a root certificate. */
const withRoot = (mode: string) => (mode === 'verify-ca' ? `&sslrootcert=${rootFile}` : '');

describe('parsePgUrl (pg-connection-string)', () => {
  it('reads host, port, user, password, database and sslmode, decoded', () => {
    expect(parsePgUrl('postgres://al%40ice:p%3Ass@db.example:6543/my%20db?sslmode=verify-full')).toEqual({
      host: 'db.example',
      port: 6543,
      user: 'al@ice',
      password: 'p:ss',
      database: 'my db',
      sslmode: 'verify-full',
      ca: undefined,
      clientCert: undefined,
    });
    expect(parsePgUrl('postgresql://[::1]:5433/test')).toMatchObject({ host: '::1', port: 5433, database: 'test' });
  });

  it('leaves absent parts undefined, for libpq defaults to fill', () => {
    expect(parsePgUrl('postgres://127.0.0.1')).toEqual({
      host: '127.0.0.1',
      port: undefined,
      user: undefined,
      password: undefined,
      database: undefined,
      sslmode: undefined,
      ca: undefined,
      clientCert: undefined,
    });
  });

  it('accepts every sslmode libpq knows', () => {
    for (const mode of SSL_MODES) expect(parsePgUrl(`postgres://h/db?sslmode=${mode}${withRoot(mode)}`).sslmode).toBe(mode);
  });

  it('reads the CA that sslrootcert names', () => {
    expect(parsePgUrl(`postgres://h/db?sslmode=verify-ca&sslrootcert=${rootFile}`).ca).toContain('BEGIN CERTIFICATE');
  });

  it('refuses sslmode=verify-ca without sslrootcert, as libpq does', () => {
    expect(() => parsePgUrl('postgres://h/db?sslmode=verify-ca')).toThrow(
      new PgUrlError("sslmode=verify-ca needs sslrootcert, the CA certificate to check the server's against (as libpq does); or use verify-full"),
    );
  });

  it('refuses an unknown sslmode, an unparsable URL, another scheme and an unreadable certificate', () => {
    const reasons: Record<string, RegExp> = {
      'postgres://h/db?sslmode=verify-ful': /^sslmode must be one of disable, allow, prefer, require, verify-ca, verify-full, got "verify-ful"$/,
      'postgres://h:99999/db': /^not a URL$/,
      'postgres://h:port/db': /^not a URL$/,
      'postgres://h/db?port=x': /^port must be a number/,
      'mysql://h/db': /^scheme must be postgres: or postgresql:$/,
      'postgres://h/db?sslmode=verify-ca&sslrootcert=/nonexistent/root.crt': /^cannot read \/nonexistent\/root\.crt: ENOENT$/,
    };
    for (const [url, reason] of Object.entries(reasons)) {
      let error: unknown;
      try {
        parsePgUrl(url);
      } catch (err) {
        error = err;
      }
      expect(error, url).toBeInstanceOf(PgUrlError);
      expect((error as PgUrlError).code, url).toBe('SC_ERR_CONFIG_INVALID');
      expect((error as Error).message, url).toMatch(reason);
    }
  });
});

const noOpenssl = !hasOpenssl();
if (noOpenssl) console.warn('SKIPPED: openssl is not installed: no client certificate to read');

describe.skipIf(noOpenssl)('client certificates (sslcert, sslkey)', () => {
  const pki = makePki();
  afterAll(() => rmSync(pki.dir, { recursive: true, force: true }));
  const cert = join(pki.dir, 'server.pem');
  const key = join(pki.dir, 'server.key');

  it('reads the certificate and key that sslcert and sslkey name', () => {
    expect(parsePgUrl(`postgres://h/db?sslmode=require&sslcert=${cert}&sslkey=${key}`).clientCert).toEqual({
      cert: readFileSync(cert, 'utf8'),
      key: readFileSync(key, 'utf8'),
    });
  });

  it("refuses one without the other, a key that is not the certificate's, and an unreadable file, with the key path", () => {
    writeFileSync(join(pki.dir, 'other.key'), readFileSync(join(pki.dir, 'ca.key')));
    const reasons: Record<string, RegExp> = {
      [`sslcert=${cert}`]: /\(sslcert needs sslkey, the key of the client certificate\)$/,
      [`sslkey=${key}`]: /\(sslkey needs sslcert, the client certificate it is the key of\)$/,
      [`sslcert=${cert}&sslkey=${join(pki.dir, 'other.key')}`]: /\(sslcert and sslkey cannot be used: .*key values mismatch\)$/,
      [`sslcert=/nonexistent/client.crt&sslkey=${key}`]: /\(cannot read \/nonexistent\/client\.crt: ENOENT\)$/,
      [`sslcert=${cert}&sslkey=/nonexistent/client.key`]: /\(cannot read \/nonexistent\/client\.key: ENOENT\)$/,
    };
    for (const [params, reason] of Object.entries(reasons)) {
      const problems = problemsOf(listener(`postgres://127.0.0.1:5432/test?sslmode=require&${params}`));
      expect(problems, params).toEqual([expect.stringMatching(/^postgres\[0\]\.upstream: expected a URL like /)]);
      expect(problems[0], params).toMatch(reason);
    }
  });
});

describe('postgres URLs in the configuration', () => {
  it('loads every valid sslmode in postgres[].upstream', () => {
    for (const mode of SSL_MODES) {
      expect(parseConfig(listener(`postgres://127.0.0.1:5432/test?sslmode=${mode}${withRoot(mode)}`), 'ok.yaml', {}).postgres[0]!.upstream).toContain(mode);
    }
  });

  it('refuses sslmode=verify-ca without sslrootcert at load, with the key path', () => {
    expect(problemsOf(listener('postgres://127.0.0.1:5432/test?sslmode=verify-ca'))).toEqual([
      `postgres[0].upstream: expected a URL like "postgres://127.0.0.1:5432", got "postgres://127.0.0.1:5432/test?sslmode=verify-ca" (sslmode=verify-ca needs sslrootcert, the CA certificate to check the server's against (as libpq does); or use verify-full)`,
    ]);
  });

  it('reports an invalid sslmode in postgres[].upstream with its key path', () => {
    expect(problemsOf(listener('postgres://127.0.0.1:5432/test?sslmode=verify-ful'))).toEqual([
      'postgres[0].upstream: expected a URL like "postgres://127.0.0.1:5432", got "postgres://127.0.0.1:5432/test?sslmode=verify-ful" (sslmode must be one of disable, allow, prefer, require, verify-ca, verify-full, got "verify-ful")',
    ]);
  });

  it('reports an unparsable postgres[].upstream and postgres[].catalogUrl with their key paths', () => {
    expect(problemsOf(listener('postgres://127.0.0.1:99999/test'))).toEqual([
      'postgres[0].upstream: expected a URL like "postgres://127.0.0.1:5432", got "postgres://127.0.0.1:99999/test" (not a URL)',
    ]);
    expect(problemsOf(listener('postgres://127.0.0.1:5432/test', ', catalogUrl: "postgres://sidecache@h:x/db"'))).toEqual([
      'postgres[0].catalogUrl: expected a URL like "postgres://sidecache@127.0.0.1:5432", got "postgres://sidecache@h:x/db" (not a URL)',
    ]);
    expect(problemsOf(listener('postgres://127.0.0.1:5432/test', ', catalogUrl: "postgres://h/db?sslmode=on"'))).toEqual([
      expect.stringMatching(/^postgres\[0\]\.catalogUrl: expected a URL like .* \(sslmode must be one of .*, got "on"\)$/),
    ]);
  });

  it('reports an invalid postgres invalidation[].url with its key path', () => {
    expect(problemsOf(bus('postgres://127.0.0.1:5432/app?sslmode=verify-ful'))).toEqual([
      expect.stringMatching(
        /^invalidation\[0\]\.url: expected a URL like "postgres:\/\/127\.0\.0\.1:5432\/app", got .* \(sslmode must be one of .*, got "verify-ful"\)$/,
      ),
    ]);
    expect(problemsOf(bus('postgres://[::1/app'))).toEqual([expect.stringMatching(/^invalidation\[0\]\.url: expected a URL like .* \(not a URL\)$/)]);
    expect(parseConfig(bus('postgres://127.0.0.1:5432/app?sslmode=disable'), 'ok.yaml', {}).invalidation[0]!.url).toBe(
      'postgres://127.0.0.1:5432/app?sslmode=disable',
    );
  });
});

describe('configuration errors never repeat a password', () => {
  it('shows a refused URL with its password replaced, in the userinfo or as a parameter', () => {
    const [problem] = problemsOf(listener('postgres://app:s3cret@127.0.0.1:5432/test?sslmode=verify-ful'));
    expect(problem).toContain('got "postgres://app:***@127.0.0.1:5432/test?sslmode=verify-ful"');
    expect(problem).not.toContain('s3cret');
    const [inQuery] = problemsOf(bus('postgres://127.0.0.1:99999/app?user=app&password=s3cret'));
    expect(inQuery).toContain('password=***');
    expect(inQuery).not.toContain('s3cret');
    const [http] = problemsOf('http:\n  - { name: api, listen: "127.0.0.1:0", upstream: "ftp://u:s3cret@h/x" }\n');
    expect(http).toContain('got "ftp://u:***@h/x"');
  });
});
