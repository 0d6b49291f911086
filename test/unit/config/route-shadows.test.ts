import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { covers, shadowedRoutes } from '../../../src/config/route-shadows.js';

describe('gateway routes that can never match (sidecache check)', () => {
  it('finds a route every request of which an earlier route takes', () => {
    const config = parseConfig(
      [
        'http:',
        '  - name: gw',
        '    listen: "127.0.0.1:0"',
        '    routes:',
        '      - { host: api.example.com, path: /billing, upstream: "http://127.0.0.1:1" }',
        '      - { host: api.example.com, path: "/billing/v2/**", upstream: "http://127.0.0.1:2" }',
        '      - { host: "*.example.com", path: /users, upstream: "http://127.0.0.1:3" }',
        '      - { host: a.example.com, path: /users/x, upstream: "http://127.0.0.1:4" }',
        '      - { host: a.example.com, path: /usersx, upstream: "http://127.0.0.1:5" }',
        '      - { upstream: "http://127.0.0.1:6" }',
        '      - { host: other.test, upstream: "http://127.0.0.1:7" }',
      ].join('\n'),
    );
    expect(shadowedRoutes(config)).toEqual([
      { path: 'http[0].routes[1]', by: 'http[0].routes[0]' },
      { path: 'http[0].routes[3]', by: 'http[0].routes[2]' },
      { path: 'http[0].routes[6]', by: 'http[0].routes[5]' },
    ]);
  });

  it('calls a route dead only when it certainly is', () => {
    const table: [Parameters<typeof covers>[0], Parameters<typeof covers>[1], boolean][] = [
      [{}, { host: 'a.test', path: '/x' }, true],
      [{ path: '/**' }, {}, true],
      [{ path: '/' }, {}, true],
      [{ path: '/a' }, {}, false],
      [{ path: '/a/**' }, { path: '/a' }, false],
      [{ path: '/a/**' }, { path: '/a/b' }, true],
      [{ path: '/a/**' }, { path: '/a/*/c' }, true],
      [{ path: '/a/*' }, { path: '/a/b' }, false],
      [{ path: '/a/*.json' }, { path: '/a/*.json' }, true],
      [{ path: '/a' }, { path: '/a/**' }, true],
      [{ path: '/a' }, { path: '/ab/**' }, false],
      [{ host: '*.example.com' }, { host: 'example.com' }, false],
      [{ host: '*.example.com' }, { host: '*.a.example.com' }, true],
      [{ host: '*.a.example.com' }, { host: '*.example.com' }, false],
      [{ host: 'a.test' }, { host: 'a.test:8080' }, true],
      [{ host: 'a.test:8080' }, { host: 'a.test' }, false],
      [{ host: 'A.test:80' }, { host: 'a.test' }, true],
      [{ host: 'a.test' }, {}, false],
    ];
    for (const [earlier, later, expected] of table) expect(covers(earlier, later), JSON.stringify([earlier, later])).toBe(expected);
  });
});
