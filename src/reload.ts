/**
 * What a new configuration changes, split into what a running server can apply (rules, TTLs,
 * stale windows, tags, buses, shutdownGrace) and what needs a restart (addresses, upstreams,
 * pools, TLS, the store's size, listeners added or removed). A listener with any change of the
 * second kind is left as it is, so nothing is half-applied.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Counter } from 'prom-client';
import { loadConfig } from './config/load.js';
import type { Config, HttpListenerConfig, PostgresListenerConfig } from './config/schema.js';
import { SidecacheError } from './errors.js';

export interface ReloadPlan {
  /** Key paths that changed but need a restart; they keep their running values. */
  needsRestart: string[];
  /** Listener entries to apply, by name. */
  http: HttpListenerConfig[];
  postgres: PostgresListenerConfig[];
  /** Whether `invalidation[]` changed. */
  buses: boolean;
  /** The configuration the server runs after the reload. */
  effective: Config;
}

export function planReload(running: Config, next: Config, restartKeys: { http: readonly string[]; postgres: readonly string[] }): ReloadPlan {
  const needsRestart: string[] = [];
  for (const key of ['listen', 'token'] as const) if (running.admin[key] !== next.admin[key]) needsRestart.push(`admin.${key}`);
  for (const key of ['maxBytes', 'maxEntryBytes'] as const) if (running.cache[key] !== next.cache[key]) needsRestart.push(`cache.${key}`);
  if (running.log.access !== next.log.access) needsRestart.push('log.access');
  if (running.workers !== next.workers) needsRestart.push('workers');
  const http = diffListeners('http', running.http, next.http, restartKeys.http, needsRestart);
  const postgres = diffListeners('postgres', running.postgres, next.postgres, restartKeys.postgres, needsRestart);
  const keep = <T extends { name: string }>(list: readonly T[], applied: readonly T[]): T[] => list.map((l) => applied.find((a) => a.name === l.name) ?? l);
  return {
    needsRestart,
    http,
    postgres,
    buses: !isDeepStrictEqual(running.invalidation, next.invalidation),
    effective: {
      ...next,
      admin: running.admin,
      cache: running.cache,
      log: running.log,
      workers: running.workers,
      http: keep(running.http, http),
      postgres: keep(running.postgres, postgres),
    },
  };
}

function diffListeners<T extends { name: string }>(
  kind: string,
  running: readonly T[],
  next: readonly T[],
  restart: readonly string[],
  needsRestart: string[],
): T[] {
  const apply: T[] = [];
  for (const entry of next) {
    const current = running.find((r) => r.name === entry.name);
    if (current === undefined) {
      needsRestart.push(`${kind}[${entry.name}] (added)`);
      continue;
    }
    if (isDeepStrictEqual(current, entry)) continue;
    const blocked = restart.filter((key) => !isDeepStrictEqual(current[key as keyof T], entry[key as keyof T]));
    if (blocked.length > 0) needsRestart.push(...blocked.map((key) => `${kind}[${entry.name}].${key}`));
    else apply.push(entry);
  }
  for (const entry of running) if (!next.some((n) => n.name === entry.name)) needsRestart.push(`${kind}[${entry.name}] (removed)`);
  return apply;
}

/** The configuration file read again for a reload (SIGHUP, `POST /reload`); an invalid one is counted as rejected and throws. */
export async function readForReload(configFile: string | undefined, reloads: Counter<'result'>): Promise<Config> {
  if (configFile === undefined) throw new SidecacheError('SC_ERR_CONFIG_READ', 'this server was started without a configuration file to reload');
  try {
    return await loadConfig(configFile);
  } catch (err) {
    reloads.inc({ result: 'rejected' });
    throw err;
  }
}
