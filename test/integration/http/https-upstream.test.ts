import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { SidecacheServer } from '../../../src/server.js';
import { httpListenerYaml, startSidecache } from '../../helpers/sidecache.js';
import { hasOpenssl, makePki } from '../../helpers/tls.js';

const openssl = hasOpenssl();
if (!openssl) console.warn('SKIPPED: https upstream tests need the openssl CLI to make a test CA');

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

describe.skipIf(!openssl)('http listener: https upstream', () => {
  it('refuses an untrusted certificate (502) and trusts the configured CA', async () => {
    const pki = makePki();
    let calls = 0;
    const origin = https.createServer({ key: pki.key, cert: pki.cert }, (_req, res) => {
      calls++;
      res.writeHead(200, { 'cache-control': 'max-age=60' });
      res.end('secure');
    });
    await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
    cleanup.push(() => new Promise((r) => origin.close(r)));
    const upstream = `https://127.0.0.1:${(origin.address() as AddressInfo).port}`;

    const untrusting: SidecacheServer = await startSidecache(httpListenerYaml(upstream));
    cleanup.push(() => untrusting.stop(100));
    const refused = await fetch(`${untrusting.httpListeners[0]!.url}/s`);
    expect(refused.status).toBe(502);
    expect(refused.headers.get('cache-status')).toContain('detail=UPSTREAM-CONNECT');

    const trusting = await startSidecache(httpListenerYaml(upstream, `    ca: "${pki.caFile}"\n`));
    cleanup.push(() => trusting.stop(100));
    const base = trusting.httpListeners[0]!.url;
    expect(await (await fetch(`${base}/s`)).text()).toBe('secure');
    expect((await fetch(`${base}/s`)).headers.get('cache-status')).toMatch(/hit/);
    expect(calls).toBe(1);
  });
});
