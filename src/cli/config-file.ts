import { fileProblems } from '../config/files.js';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { ConfigError } from '../errors.js';

/** The file `-c` names, else $SIDECACHE_CONFIG, else ./sidecache.yaml. */
export function configPath(value: string | undefined): string {
  return value ?? process.env.SIDECACHE_CONFIG ?? 'sidecache.yaml';
}

/** The configuration in `file`, with the files it names read as PEM: every problem at once, with its key path. */
export async function loadWithFiles(file: string): Promise<Config> {
  const config = await loadConfig(file);
  const problems = fileProblems(config);
  if (problems.length > 0) throw new ConfigError(file, problems);
  return config;
}
