/** What a replica publishes: its invalidations as contract messages, split to fit the bus. */
import type { InvalidationTarget } from '../cache/types.js';
import type { Bytes } from '../units.js';

const LIST_FIELDS = ['tags', 'keys', 'prefixes'] as const;

/**
 * `target` as messages of the contract (docs/contracts.md "Invalidation messages"), each at most
 * `limit` bytes of UTF-8 and naming `origin`. `tables` never appear: a local invalidation already
 * names `table:` tags, and receivers apply tags as they come. A name too large to travel in any
 * message turns the whole target into `{"all":true}`, the safe superset.
 */
export function encodeForBus(target: InvalidationTarget, origin: string, limit: Bytes): string[] {
  const all = JSON.stringify({ all: true, origin });
  if (target.all === true) return [all];
  const head = `{"origin":${JSON.stringify(origin)}`;
  const messages: string[] = [];
  let chunk: Partial<Record<(typeof LIST_FIELDS)[number], string[]>> = {};
  // The bytes `chunk` takes once encoded: the head, each field's `,"f":[]`, each name and its comma.
  let bytes = Buffer.byteLength(head) + 1;
  const flush = (): void => {
    messages.push(JSON.stringify({ origin, ...chunk }));
    chunk = {};
    bytes = Buffer.byteLength(head) + 1;
  };
  for (const field of LIST_FIELDS) {
    for (const name of target[field] ?? []) {
      const cost = Buffer.byteLength(JSON.stringify(name)) + 1;
      const fieldCost = chunk[field] === undefined ? field.length + 6 : 0;
      if (bytes + fieldCost + cost > limit) {
        if (Object.keys(chunk).length === 0) return [all];
        flush();
        if (bytes + field.length + 6 + cost > limit) return [all];
      }
      (chunk[field] ??= []).push(name);
      bytes += (chunk[field].length === 1 ? field.length + 6 : 0) + cost;
    }
  }
  if (Object.keys(chunk).length > 0) flush();
  return messages;
}
