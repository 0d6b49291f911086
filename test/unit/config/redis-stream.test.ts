import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import type { ConfigError } from '../../../src/errors.js';

function problemsOf(text: string): string[] {
  try {
    parseConfig(text, 'test.yaml', {});
  } catch (err) {
    return (err as ConfigError).problems.map((p) => `${p.path}: ${p.message}`);
  }
  throw new Error('expected the configuration to be refused');
}

/** Issue 17 point 5: the `redis-stream` bus type's keys. */
describe('invalidation[].type: redis-stream', () => {
  it('fills its defaults: stream sidecache, maxLen 10000, and the keys every bus has', () => {
    const config = parseConfig('invalidation:\n  - { type: redis-stream, url: "redis://127.0.0.1:6379" }\n', 'test.yaml', {});
    expect(config.invalidation[0]).toEqual({
      type: 'redis-stream',
      url: 'redis://127.0.0.1:6379',
      stream: 'sidecache',
      maxLen: 10_000,
      onGap: 'flush',
      heartbeat: 5_000,
      maxMessageBytes: 1024 ** 2,
      publish: true,
      whileDown: { maxAgeMs: 0 },
    });
  });

  it('refuses keys of other bus types, a bad URL, a stream name with spaces and a negative maxLen', () => {
    const problems = problemsOf('invalidation:\n  - { type: redis-stream, url: "postgres://x", stream: "a b", maxLen: -1, channel: c, cluster: true }\n');
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^invalidation\[0\]\.url: expected a URL like "redis:/),
        expect.stringMatching(/^invalidation\[0\]\.stream: expected a key name without spaces/),
        expect.stringMatching(/^invalidation\[0\]\.maxLen: /),
        expect.stringMatching(/^invalidation\[0\]\.channel: /),
        expect.stringMatching(/^invalidation\[0\]\.cluster: /),
      ]),
    );
  });
});
