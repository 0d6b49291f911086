import { describe, expect, it } from 'vitest';
import { compileRoutePath, RouteMatcher } from '../../../../src/upstreams/http/route-match.js';

describe('gateway route matching (prepared lookup)', () => {
  const matcher = new RouteMatcher([
    { host: 'api.example.com', path: '/billing/**', value: 'billing' },
    { host: 'API.example.com:8080', path: '/users', value: 'users-8080' },
    { host: 'api.example.com', path: '/users', value: 'users' },
    { host: '*.example.com', path: '/users', value: 'wild-users' },
    { host: '*.eu.example.com', value: 'eu' },
    { path: '/static', value: 'static' },
    { host: 'admin.example.com', value: 'admin' },
  ]);

  it('matches exact hosts (with or without a port), wildcards by suffix, and routes without a host, first match wins', () => {
    expect(matcher.match('api.example.com', '/billing/x')).toBe('billing');
    expect(matcher.match('api.example.com', '/billing')).toBeUndefined();
    expect(matcher.match('api.example.com:8080', '/users/1')).toBe('users-8080');
    expect(matcher.match('api.example.com:9090', '/users/1')).toBe('users');
    expect(matcher.match('api.example.com', '/users')).toBe('users');
    expect(matcher.match('x.example.com', '/users')).toBe('wild-users');
    // The longer wildcard's list holds the shorter one's routes, in config order.
    expect(matcher.match('a.eu.example.com', '/users')).toBe('wild-users');
    expect(matcher.match('a.eu.example.com', '/other')).toBe('eu');
    expect(matcher.match('eu.example.com', '/other')).toBeUndefined();
    expect(matcher.match('example.com', '/users')).toBeUndefined();
    expect(matcher.match('anything.test', '/static/app.js')).toBe('static');
    expect(matcher.match(undefined, '/static')).toBe('static');
    expect(matcher.match(undefined, '/users')).toBeUndefined();
    // An exact host's list includes the wildcards and host-less routes that reach it.
    expect(matcher.match('admin.example.com', '/users')).toBe('wild-users');
    expect(matcher.match('admin.example.com', '/static/x')).toBe('static');
    expect(matcher.match('admin.example.com', '/x')).toBe('admin');
    // Default deny: not a route whose path a lenient origin's reading of the request leaves.
    expect(matcher.match('api.example.com', '/billing/..%2F..%2Fadmin')).toBeUndefined();
    expect(matcher.match('api.example.com', '/billing/x%2Fy;p=1')).toBe('billing');
  });

  it('knows the hosts routes name, for knownHostsOnly', () => {
    expect(['api.example.com', 'api.example.com:8080', 'x.example.com', 'a.eu.example.com', 'admin.example.com'].map((h) => matcher.knows(h))).toEqual([
      true,
      true,
      true,
      true,
      true,
    ]);
    expect(['example.com', 'other.test', undefined].map((h) => matcher.knows(h))).toEqual([false, false, false]);
  });

  it('compiles paths once: prefixes of whole segments, globs, and the prefix an upstream path replaces', () => {
    const prefix = compileRoutePath('/billing/');
    expect(['/billing', '/billing/x', '/billingx', '/'].map((p) => prefix.test(p))).toEqual([true, true, false, false]);
    expect(prefix.strip).toBe('/billing');
    const glob = compileRoutePath('/billing/**');
    expect(['/billing', '/billing/x/y'].map((p) => glob.test(p))).toEqual([false, true]);
    expect(glob.strip).toBe('/billing');
    expect(compileRoutePath('/v*/items').strip).toBe('');
    expect(compileRoutePath('/').test('/anything')).toBe(true);
    expect(compileRoutePath(undefined).test('*')).toBe(true);
  });
});
