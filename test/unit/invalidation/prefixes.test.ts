import { describe, expect, it } from 'vitest';
import { parseInvalidation } from '../../../src/invalidation/message.js';

describe('invalidation prefixes in the normal form of request targets', () => {
  it.each([
    ['/%75sers/', '/users/'],
    ['//users/./', '/users/'],
    ['/a/%2f', '/a/%2F'],
    ['/search?q=%41', '/search?q=A'],
  ])('%j is read as %j', (prefix, normal) => {
    expect(parseInvalidation(JSON.stringify({ prefixes: [prefix] })).prefixes).toEqual([normal]);
  });

  it('refuses a prefix with a malformed escape', () => {
    expect(() => parseInvalidation('{"prefixes":["/a%2"]}')).toThrow(/malformed escape|"%" followed by two hex digits/);
  });
});
