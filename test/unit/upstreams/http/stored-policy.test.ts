/**
 * Issue 14: an entry no longer keeps the policy it was stored with; `storedPolicy` rebuilds it from
 * the stored status and fields when a revalidation needs it. For every pair of stored validators
 * and 304 validators, the rebuilt policy must answer `revalidatedPolicy` as the kept one did.
 */
import CachePolicy from 'http-cache-semantics';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../../../src/clock.js';
import { clockedPolicy, decideStorage, storedPolicy } from '../../../../src/upstreams/http/policy.js';
import type { HttpRoute } from '../../../../src/upstreams/http/rules.js';

const clock = new ManualClock(Date.parse('2026-11-24T00:00:00Z'));
const Policy = clockedPolicy(clock);
const route: HttpRoute = { glob: '**', cache: true, ttlMs: undefined, tags: [], cacheSetCookie: false, ignoreRequestCacheControl: false };
const lastModified = 'Tue, 31 Dec 2024 00:00:00 GMT';

const storedVariants: Record<string, Record<string, string | string[]>> = {
  strong: { etag: '"a"' },
  weak: { etag: 'W/"a"' },
  dated: { 'last-modified': lastModified },
  both: { etag: '"a"', 'last-modified': lastModified },
  none: {},
  repeated: { etag: ['"a"', '"b"'], 'x-extra': 'kept' },
  vary: { etag: '"a"', vary: 'Accept-Language' },
  targeted: { etag: '"a"', 'cdn-cache-control': 'max-age=30' },
};

const notModifiedVariants: Record<string, Record<string, string>> = {
  'same strong': { etag: '"a"', 'cache-control': 'max-age=90', 'x-extra': 'new' },
  'other strong': { etag: '"b"', 'cache-control': 'max-age=90' },
  'same weak': { etag: 'W/"a"' },
  'other weak': { etag: 'W/"b"' },
  'same date': { 'last-modified': lastModified, 'cache-control': 'max-age=5' },
  'other date': { 'last-modified': 'Mon, 30 Dec 2024 00:00:00 GMT' },
  'no validator': { 'cache-control': 'max-age=7' },
};

function outcome(result: { policy: CachePolicy; modified: boolean; matches: boolean }) {
  const { policy, modified, matches } = result;
  return { modified, matches, storable: policy.storable(), ttl: policy.timeToLive(), headers: policy.responseHeaders() };
}

describe('storedPolicy (issue 14): the policy a revalidation asks, rebuilt from the stored fields', () => {
  for (const [storedName, fields] of Object.entries(storedVariants)) {
    for (const [notModifiedName, notModified] of Object.entries(notModifiedVariants)) {
      it(`stored ${storedName}, 304 with ${notModifiedName}: the same answer as the kept policy`, () => {
        const filling = { host: 'h', 'accept-language': 'en', 'user-agent': 'first' };
        const targeted = ['sidecache-cache-control', 'cdn-cache-control'];
        const decision = decideStorage({
          Policy,
          method: 'GET',
          url: '/x',
          requestHeaders: filling,
          status: 200,
          responseHeaders: { date: new Date(clock.now()).toUTCString(), 'cache-control': 'max-age=1', ...fields },
          route,
          defaults: { defaultTtlMs: 0, staleWhileRevalidateMs: 0, staleIfErrorMs: 0 },
          targeted,
        });
        if (!decision.store) throw new Error(`not stored: ${decision.detail}`);
        clock.advance(2000);
        const revalidating = { host: 'h', 'accept-language': 'en', 'user-agent': 'second' };
        const rebuilt = storedPolicy(Policy, '/x', revalidating, 200, decision.responseHeaders, targeted);
        const request = { method: 'GET', url: '/x', headers: revalidating };
        const response = { status: 304, headers: { date: new Date(clock.now()).toUTCString(), ...notModified } };
        expect(outcome(rebuilt.revalidatedPolicy(request, response))).toEqual(outcome(decision.policy.revalidatedPolicy(request, response)));
      });
    }
  }
});
