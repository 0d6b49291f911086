import type { Config } from '../config/schema.js';

/**
 * What one of `workers` worker runs: the configuration with its share of the store. The operator's
 * `cache.maxBytes` stays the ceiling of the whole instance (docs/workers.md "The cache"), so each
 * worker gets `maxBytes / workers`, and an entry can be no larger than a worker's store.
 */
export function workerConfig(config: Config, workers: number): Config {
  const maxBytes = Math.floor(config.cache.maxBytes / workers);
  return { ...config, cache: { maxBytes, maxEntryBytes: Math.min(config.cache.maxEntryBytes, maxBytes) } };
}
