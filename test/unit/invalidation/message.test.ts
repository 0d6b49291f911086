import { describe, expect, it } from 'vitest';
import { tableTag } from '../../../src/cache/tags.js';
import { parseInvalidation } from '../../../src/invalidation/message.js';

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

  it('normalizes table names', () => {
    expect(['accounts', 'Accounts', 'public.accounts', '"Accounts"', 'db.public."ACCOUNTS"'].map(tableTag)).toEqual(Array(5).fill('table:accounts'));
  });
});
