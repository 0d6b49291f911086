/** Issue 14 point 4: the `workers` key, what a worker builds from, and that a change needs a restart. */
import { describe, expect, it } from 'vitest';
import { loadConfig, parseConfig } from '../../../src/config/load.js';
import type { ConfigError } from '../../../src/errors.js';
import { planReload } from '../../../src/reload.js';
import { HTTP_RESTART_KEYS } from '../../../src/upstreams/http/listener.js';
import { POSTGRES_RESTART_KEYS } from '../../../src/upstreams/postgres/listener.js';
import { workerConfig, workerGrace } from '../../../src/workers/worker-config.js';

const config = (text: string) => parseConfig(text, 'test.yaml', {});

function problemsOf(text: string): string[] {
  try {
    config(text);
  } catch (err) {
    return (err as ConfigError).problems.map((p) => `${p.path}: ${p.message}`);
  }
  throw new Error('expected the configuration to be refused');
}

describe('workers', () => {
  it('is a whole number from 1 to 64, 1 by default', () => {
    expect(config('').workers).toBe(1);
    expect(config('workers: 4\n').workers).toBe(4);
    for (const bad of ['0', '-1', '1.5', '65', 'two']) expect(problemsOf(`workers: ${bad}\n`)).toEqual([expect.stringMatching(/^workers: /)]);
  });

  it('gives each worker its share of cache.maxBytes, and entries no larger than that share', () => {
    const shared = workerConfig(config('cache: { maxBytes: 10MiB, maxEntryBytes: 1MiB }\nworkers: 3\n'), 3);
    expect(shared.cache).toEqual({ maxBytes: Math.floor((10 * 1024 ** 2) / 3), maxEntryBytes: 1024 ** 2 });
    expect(workerConfig(config('cache: { maxBytes: 10MiB, maxEntryBytes: 8MiB }\n'), 4).cache).toEqual({
      maxBytes: 2.5 * 1024 ** 2,
      maxEntryBytes: 2.5 * 1024 ** 2,
    });
  });

  it('needs a restart to change, and keeps running with its value until then', () => {
    const plan = planReload(config('workers: 2\n'), config('workers: 4\n'), { http: HTTP_RESTART_KEYS, postgres: POSTGRES_RESTART_KEYS });
    expect(plan.needsRestart).toEqual(['workers']);
    expect(plan.effective.workers).toBe(2);
  });
});

describe('what the primary sends a worker', () => {
  it('is the configuration as JSON carries it over IPC: the documented example survives the trip', async () => {
    const example = await loadConfig(new URL('../../../config/sidecache.yaml', import.meta.url).pathname, {});
    expect(JSON.parse(JSON.stringify(example))).toStrictEqual(example);
  });

  it('a stop deadline that leaves a worker time to exit within the grace', () => {
    expect(workerGrace(10_000)).toBe(9_500);
    expect(workerGrace(400)).toBe(300);
    expect(workerGrace(0)).toBe(0);
  });
});
