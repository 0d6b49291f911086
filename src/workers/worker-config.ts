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

/** What a worker's stop leaves of `shutdownGrace` for the process to exit, at most. */
const EXIT_MARGIN_MS = 500;

/** A worker's own stop deadline: a little before the instance's grace ends, so that it has exited by then. */
export function workerGrace(graceMs: number): number {
  return graceMs - Math.min(EXIT_MARGIN_MS, graceMs / 4);
}
