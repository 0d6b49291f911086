import { describe, expect, it } from 'vitest';
import { rebuildTarget } from '../../../../src/cache/paths.js';
import { hostOf, lenientReading, normalizeTarget, originForm } from '../../../../src/upstreams/http/target.js';

/** One test per row: `fn(input)` is `output`. */
function mapsEach(rows: [string, string][], fn: (input: string) => string | undefined): void {
  it.each(rows)('%s → %s', (input, output) => {
    expect(fn(input)).toBe(output);
  });
}

describe('normalizeTarget (RFC 3986 §6.2.2)', () => {
  mapsEach(
    [
      ['/', '/'],
      ['/users/1', '/users/1'],
      ['/%70rivate/me', '/private/me'],
      ['/%75sers/%33', '/users/3'],
      ['/a%2fb', '/a%2Fb'],
      ['/a%2Fb', '/a%2Fb'],
      ['/%7e/%7E', '/~/~'],
      ['/%41%5a%61%7a%30%2d%2e%5f', '/AZaz0-._'],
      ['/a%20b', '/a%20b'],
      ['/./private/me', '/private/me'],
      ['/x/../private/me', '/private/me'],
      ['/%2e%2e/private/me', '/private/me'],
      ['/%2E/a', '/a'],
      ['/..', '/'],
      ['/../../a', '/a'],
      ['/a/b/..', '/a/'],
      ['/a/b/.', '/a/b/'],
      ['/a/./b/../c', '/a/c'],
      ['/a/', '/a/'],
      ['//users/2', '/users/2'],
      ['/a//b///c', '/a/b/c'],
      ['/x//../a', '/a'],
      ['/.../a', '/.../a'],
      ['/..a/b', '/..a/b'],
      ['/a\\b', '/a%5Cb'],
      ['/a"b{c}|d^e`', '/a%22b%7Bc%7D%7Cd%5Ee%60'],
      ['/caf\u00e9', '/caf%E9'],
      ['/a#b', '/a%23b'],
      ["/a:b@c!$&'()*+,;=", "/a:b@c!$&'()*+,;="],
      ['/inv/a?', '/inv/a'],
      ['/q?', '/q'],
      ['/q?a=1&b=2', '/q?a=1&b=2'],
      ['/q?a=%7e&b=%2f', '/q?a=~&b=%2F'],
      ['/q?a=/../x', '/q?a=/../x'],
      ['/q?a=b?c', '/q?a=b?c'],
      ['/q?a=%22x%22', '/q?a=%22x%22'],
      ['/q?a="x"', '/q?a=%22x%22'],
      ['/q?a+b', '/q?a+b'],
      ['/./a/?x', '/a/?x'],
    ],
    normalizeTarget,
  );

  // Issue 14: a target already normal is returned as it is, without being rebuilt; on any
  // target, that shortcut must give what the full normalisation gives.
  it('answers every target as the full normalisation does (the shortcut for normal targets included)', () => {
    const alphabet = ['/', '/', '.', '..', '%', '%2e', '%2F', '%7e', '%41', 'a', 'Z', '0', '?', '?', '=', '&', '~', '"', ';', '\\', '#', ' ', '\u00e9', '//'];
    let seed = 14;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let i = 0; i < 20_000; i++) {
      let target = '/';
      for (let n = random(12); n > 0; n--) target += alphabet[random(alphabet.length)];
      const normal = rebuildTarget(target);
      expect(normalizeTarget(target), target).toBe(normal);
      if (normal !== undefined) expect(normalizeTarget(normal), normal).toBe(normal);
    }
  });

  it.each(['', 'users', '*', 'http://h/x', '/a%', '/a%4', '/a%zz', '/a%g0', '/q?a=%', '/q?a=%x1', '/\u0100'])('%j is malformed', (input) => {
    expect(normalizeTarget(input)).toBeUndefined();
  });

  it('is idempotent', () => {
    for (const input of ['/%70rivate/./me/../x?', '//a//b/..?q=%7e%2f', '/a"b', '/caf\u00e9?x=\u00e9']) {
      const once = normalizeTarget(input)!;
      expect(normalizeTarget(once)).toBe(once);
    }
  });
});

describe('originForm (RFC 9112 §3.2)', () => {
  const own = (host: string): boolean => host === '127.0.0.1:8080' || host === 'api.example.com';
  mapsEach(
    [
      ['/x', '/x'],
      ['http://127.0.0.1:8080/x?y', '/x?y'],
      ['HTTP://API.EXAMPLE.COM/x', '/x'],
      ['http://api.example.com:80/x', '/x'],
      ['http://api.example.com', '/'],
      ['http://api.example.com?q', '/?q'],
      ['http://api.example.com/%70/../a', '/%70/../a'],
    ],
    (input) => originForm(input, own),
  );

  it.each([
    'http://evil.example/x',
    'https://api.example.com/x',
    'http://u@api.example.com/x',
    'http://api.example.com:8081/x',
    '*',
    'ftp://api.example.com/',
    'http:///x',
  ])('%s is refused', (input) => {
    expect(originForm(input, own)).toBeUndefined();
  });

  it('spells hosts as URL does', () => {
    expect(hostOf('Example.COM:80')).toBe('example.com');
    expect(hostOf('[::1]:8080')).toBe('[::1]:8080');
    expect(hostOf('a/b')).toBeUndefined();
    expect(hostOf('')).toBeUndefined();
  });
});

describe('lenientReading (how a lenient origin may read a normal path)', () => {
  mapsEach(
    [
      ['/users/1', '/users/1'],
      ['/private%2Fme', '/private/me'],
      ['/%2570rivate/me', '/private/me'],
      ['/%252570rivate', '/private'],
      ['/private;jsessionid=1/me', '/private/me'],
      ['/private%5Cme', '/private/me'],
      ['/x%2F..%2Fprivate/me', '/private/me'],
      ['/a%2F%2Fb', '/a/b'],
      ['/PRIVATE/me', '/PRIVATE/me'],
    ],
    lenientReading,
  );
});
