import { describe, expect, it } from 'vitest';
import { directivesOf, parseCacheControl } from '../../../../src/upstreams/http/cache-control.js';

const parse = (value: string | string[] | undefined) => Object.fromEntries(parseCacheControl(value));

describe('parseCacheControl (RFC 9111 §5.2)', () => {
  it('reads bare directives and arguments, trimming white space', () => {
    expect(parse('public, max-age=60')).toEqual({ public: true, 'max-age': '60' });
    expect(parse('  no-store ,must-revalidate\t, s-maxage = 5 ')).toEqual({ 'no-store': true, 'must-revalidate': true, 's-maxage': '5' });
  });

  it('compares directive names case-insensitively, and leaves arguments as sent', () => {
    expect(parse('Max-Age=10, NO-CACHE, Private="X-Token"')).toEqual({ 'max-age': '10', 'no-cache': true, private: 'X-Token' });
  });

  it('reads quoted arguments: quotes removed, escapes undone, commas inside kept', () => {
    expect(parse('max-stale="30", min-fresh=2')).toEqual({ 'max-stale': '30', 'min-fresh': '2' });
    expect(parse('no-cache="set-cookie, x-secret", max-age=5')).toEqual({ 'no-cache': 'set-cookie, x-secret', 'max-age': '5' });
    expect(parse('ext="a \\"quoted\\" \\\\ word", public')).toEqual({ ext: 'a "quoted" \\ word', public: true });
    expect(parse('ext="unterminated, public')).toEqual({ ext: 'unterminated, public' });
  });

  it('treats several fields as one list; a repeated directive: the last counts', () => {
    expect(parse(['max-age=60', 'public'])).toEqual({ 'max-age': '60', public: true });
    expect(parse('max-age=60, max-age=0')).toEqual({ 'max-age': '0' });
  });

  it('skips empty list members and reads an empty argument as empty', () => {
    expect(parse(', ,public,,')).toEqual({ public: true });
    expect(parse('max-age=')).toEqual({ 'max-age': '' });
    expect(parse('')).toEqual({});
    expect(parse(undefined)).toEqual({});
  });

  it('reads a directive named like an Object method as a directive, and nothing else as one', () => {
    expect(parseCacheControl('public').get('constructor')).toBeUndefined();
    expect(parseCacheControl('toString, __proto__=1')).toEqual(
      new Map<string, string | true>([
        ['tostring', true],
        ['__proto__', '1'],
      ]),
    );
  });
});

describe('directivesOf (RFC 9111 §5.4)', () => {
  it('reads Cache-Control, and Pragma: no-cache only when Cache-Control is absent', () => {
    expect(Object.fromEntries(directivesOf({ 'cache-control': 'max-age=5', pragma: 'no-cache' }))).toEqual({ 'max-age': '5' });
    expect(Object.fromEntries(directivesOf({ pragma: 'No-Cache' }))).toEqual({ 'no-cache': true });
    expect(Object.fromEntries(directivesOf({ pragma: 'x-other' }))).toEqual({});
    expect(Object.fromEntries(directivesOf({}))).toEqual({});
  });
});
