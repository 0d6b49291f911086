/**
 * What a reload of `workers: N` applies by starting new workers (docs/workers.md "Life cycle"):
 * every key a single process reports in `needsRestart` but those of the primary itself.
 */
import type { Config } from '../config/schema.js';

/**
 * Keys only a restart of the whole instance applies: the admin listener is the primary's, the
 * store's size is the instance's budget (`sidecache_cache_max_bytes`), and `workers` is how many.
 */
const INSTANCE_KEY = /^(admin\.|cache\.|workers$)/;

/** `needsRestart` of `planReload`, split into what new workers apply and what needs the instance restarted. */
export function splitRestart(needsRestart: readonly string[]): { byNewWorkers: string[]; instance: string[] } {
  return { byNewWorkers: needsRestart.filter((k) => !INSTANCE_KEY.test(k)), instance: needsRestart.filter((k) => INSTANCE_KEY.test(k)) };
}

/** What new workers build from: the new file, but for the keys that keep their running values until the instance restarts. */
export function replacementConfig(running: Config, next: Config): Config {
  return { ...next, admin: running.admin, cache: running.cache, workers: running.workers };
}
