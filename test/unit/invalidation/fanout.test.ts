import { describe, expect, it } from 'vitest';
import { encodeForBus } from '../../../src/invalidation/encode.js';
import { readInvalidation } from '../../../src/invalidation/message.js';
import { Outbox } from '../../../src/invalidation/outbox.js';

describe('encodeForBus (issue 17)', () => {
  it('sends a small target as one message naming its origin, without empty fields', () => {
    expect(encodeForBus({ tags: ['table:a'], keys: [], prefixes: ['/u/'] }, 'me', 8000)).toEqual(['{"origin":"me","tags":["table:a"],"prefixes":["/u/"]}']);
    expect(encodeForBus({ all: true, tags: ['x'] }, 'me', 8000)).toEqual(['{"all":true,"origin":"me"}']);
    expect(encodeForBus({ tags: [] }, 'me', 8000)).toEqual([]);
  });

  it('splits a target into messages within the limit, every name sent once, each readable by the contract', () => {
    const tags = Array.from({ length: 3000 }, (_, i) => `table:t${i}é`);
    const keys = Array.from({ length: 500 }, (_, i) => `http:api:/k/${i}`);
    for (const limit of [7999, 1024, 300]) {
      const messages = encodeForBus({ tags, keys }, 'replica-1', limit);
      expect(messages.length).toBeGreaterThan(1);
      const seen = { tags: [] as string[], keys: [] as string[] };
      for (const m of messages) {
        expect(Buffer.byteLength(m)).toBeLessThanOrEqual(limit);
        const { target, origin } = readInvalidation(m);
        expect(origin).toBe('replica-1');
        seen.tags.push(...(target.tags ?? []));
        seen.keys.push(...(target.keys ?? []));
      }
      expect(seen).toEqual({ tags, keys });
    }
  });

  it('turns a name no message can carry into {all: true}, the safe superset', () => {
    expect(encodeForBus({ tags: ['short', 'x'.repeat(9000)] }, 'me', 7999)).toEqual(['{"all":true,"origin":"me"}']);
  });
});

describe('Outbox (issue 17)', () => {
  it('coalesces what failed to publish, and empties when taken', () => {
    const outbox = new Outbox(10);
    outbox.add({ tags: ['a', 'b'] });
    outbox.add({ tags: ['b'], keys: ['k'], prefixes: ['/p/'] });
    expect(outbox.size).toBe(4);
    expect(outbox.take()).toEqual({ tags: ['a', 'b'], keys: ['k'], prefixes: ['/p/'] });
    expect(outbox.size).toBe(0);
    expect(outbox.take()).toBeUndefined();
  });

  it('becomes {all: true} past its bound or on an all, and stays so until taken', () => {
    const outbox = new Outbox(3);
    outbox.add({ tags: ['a', 'b', 'c', 'd'] });
    expect(outbox.size).toBe(1);
    outbox.add({ tags: ['e'] });
    expect(outbox.take()).toEqual({ all: true });
    outbox.add({ tags: ['a'] });
    outbox.add({ all: true });
    expect(outbox.take()).toEqual({ all: true });
    outbox.add({ tags: ['z'] });
    expect(outbox.take()).toEqual({ tags: ['z'], keys: [], prefixes: [] });
  });
});

describe('origin in the message contract (issue 17)', () => {
  it('reads origin, and refuses one that is not a short string', () => {
    expect(readInvalidation('{"tags":["a"],"origin":"host/1"}')).toEqual({ target: { tags: ['a'], keys: [], prefixes: [], all: false }, origin: 'host/1' });
    expect(readInvalidation('accounts').origin).toBeUndefined();
    for (const bad of ['{"origin":1}', '{"origin":""}', `{"origin":"${'x'.repeat(201)}"}`]) {
      expect(() => readInvalidation(bad)).toThrow(/origin to be a string/);
    }
  });
});
