import http from 'node:http';
import { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { stripRequestFields, withForwardedHost } from '../../../../src/upstreams/http/headers.js';
import { isAllowedUpgrade } from '../../../../src/upstreams/http/upgrade.js';

/** An IncomingMessage as node:http's parser fills it (its own method): `headers` is built on first read. */
function incoming(raw: string[]): http.IncomingMessage {
  const req = new http.IncomingMessage(new Socket());
  (req as unknown as { _addHeaderLines(headers: string[], n: number): void })._addHeaderLines(raw, raw.length);
  return req;
}

describe('stripRequestFields', () => {
  const names = new Set(['x-forwarded-host', 'x-http-method-override']);

  it('removes the named fields from rawHeaders and headers, whatever their case, before headers was read', () => {
    const req = incoming(['Host', 'a', 'X-Forwarded-Host', 'evil', 'x-http-method-override', 'DELETE', 'Accept', '*/*', 'X-FORWARDED-HOST', 'evil2']);
    stripRequestFields(req, names);
    expect(req.rawHeaders).toEqual(['Host', 'a', 'Accept', '*/*']);
    expect(req.headers).toEqual({ host: 'a', accept: '*/*' });
    expect(req.headersDistinct).toEqual({ host: ['a'], accept: ['*/*'] });
  });

  it('and after headers was read', () => {
    const req = incoming(['Host', 'a', 'X-Forwarded-Host', 'evil']);
    expect(req.headers['x-forwarded-host']).toBe('evil');
    stripRequestFields(req, names);
    expect(req.headers).toEqual({ host: 'a' });
  });

  it('leaves a request without them as it is', () => {
    const raw = ['Host', 'a'];
    const req = incoming(raw);
    stripRequestFields(req, names);
    expect(req.rawHeaders).toBe(raw);
    stripRequestFields(req, new Set());
    expect(req.headers).toEqual({ host: 'a' });
  });
});

describe('withForwardedHost', () => {
  it('replaces any X-Forwarded-Host with the public host, and changes nothing without one', () => {
    const fields = ['host', 'up', 'X-Forwarded-Host', 'evil', 'via', '1.1 sidecache'];
    expect(withForwardedHost(fields, 'api.example.com')).toEqual(['host', 'up', 'via', '1.1 sidecache', 'x-forwarded-host', 'api.example.com']);
    expect(withForwardedHost(fields, undefined)).toBe(fields);
  });
});

describe('isAllowedUpgrade', () => {
  const allowed = new Set(['websocket', 'echo']);
  it.each([
    ['websocket', true],
    ['WebSocket', true],
    ['echo/2, websocket', true],
    ['h2c', false],
    ['websocket, h2c', false],
    ['', false],
    [' , ', false],
    [undefined, false],
  ])('%j → %s', (value, expected) => {
    expect(isAllowedUpgrade(value, allowed)).toBe(expected);
  });
});
