import { describe, expect, it } from 'vitest';
import { tableTag } from '../../../src/cache/tags.js';
import { InvalidationMessageError, nestedDeeperThan, parseInvalidation } from '../../../src/invalidation/message.js';

describe('parseInvalidation', () => {
  it('reads the JSON contract and turns tables into table: tags', () => {
    expect(parseInvalidation('{"tags":["user:42"],"tables":["public.Accounts"],"keys":["k"],"prefixes":["/users/"],"all":false}')).toEqual({
      tags: ['user:42', 'table:accounts'],
      keys: ['k'],
      prefixes: ['/users/'],
      all: false,
    });
    expect(parseInvalidation('{}')).toEqual({ tags: [], keys: [], prefixes: [], all: false });
  });

  it('reads a non-JSON payload as a comma-separated list of tables', () => {
    expect(parseInvalidation('accounts')).toEqual({ tags: ['table:accounts'] });
    expect(parseInvalidation(' accounts, Orders ,app."Items" ')).toEqual({ tags: ['table:accounts', 'table:orders', 'table:items'] });
  });

  it.each([
    ['', /empty/],
    ['{"tags": [', /malformed JSON/],
    ['[1,2]', /expected a JSON object, got an array/],
    ['{"tag":["x"]}', /unknown field "tag"/],
    ['{"tags":"x"}', /tags to be a list of non-empty strings/],
    ['{"tables":[""]}', /tables to be a list/],
    ['{"all":"yes"}', /all to be true or false/],
    ['{"prefixes":["users/"]}', /start with "\/"/],
    ['a,,b', /comma-separated list/],
  ])('refuses %j', (payload, reason) => {
    expect(() => parseInvalidation(payload)).toThrow(reason);
    try {
      parseInvalidation(payload);
    } catch (err) {
      expect((err as { code: string }).code).toBe('SC_ERR_INVALIDATION_MESSAGE');
    }
  });

  it('refuses JSON nested deeper than the contract before parsing it, brackets in strings aside', () => {
    expect(nestedDeeperThan('{"tags":["[[[{{{"]}', 2)).toBe(false);
    expect(nestedDeeperThan('{"tags":["a\\"[[["]}', 2)).toBe(false);
    expect(nestedDeeperThan('{"tags":[["a"]]}', 2)).toBe(true);
    const deep = '['.repeat(100_000) + ']'.repeat(100_000);
    expect(() => parseInvalidation(`{"tags":${deep}}`)).toThrow(/at most 2 levels of nesting/);
  });

  it('names the broken rule in `reason` and quotes only a short excerpt of the payload', () => {
    const long = `{"tags":"${'x'.repeat(1_000_000)}"}`;
    let caught: unknown;
    try {
      parseInvalidation(long);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(InvalidationMessageError);
    expect((caught as InvalidationMessageError).reason).toBe('tags not a list of strings');
    expect((caught as Error).message.length).toBeLessThan(300);
    expect(() => parseInvalidation(`{"tags":[${Array.from({ length: 100_000 }, (_, i) => i).join(',')}]}`)).toThrow(/got \[0,1,2,3,4,5,6,7,8,9,…\]$/);
  });

  it('normalizes table names', () => {
    expect(['accounts', 'Accounts', 'public.accounts', '"Accounts"', 'db.public."ACCOUNTS"'].map(tableTag)).toEqual(Array(5).fill('table:accounts'));
  });
});
