import { readFile } from 'node:fs/promises';
import { LineCounter, parseDocument } from 'yaml';
import { type ConfigProblem, ConfigError, SidecacheError } from '../errors.js';
import { interpolate } from './env.js';
import { crossCheck } from './cross-check.js';
import { type Config, configSchema } from './schema.js';

/**
 * Text to frozen config: YAML → `${ENV}` interpolation into its values → schema (unknown keys are problems,
 * defaults fill the rest) → cross-key rules → deep freeze. Every problem is collected first and
 * thrown once, so an operator can fix the file in one pass.
 */
export function parseConfig(text: string, source = 'config', env: NodeJS.ProcessEnv = process.env): Config {
  const lines = new LineCounter();
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true, lineCounter: lines });
  const problems: ConfigProblem[] = doc.errors.map((err) => {
    const line = err.linePos?.[0]?.line;
    return { path: '', message: `${line === undefined ? '' : `line ${line}: `}YAML: ${err.message.split('\n')[0]}` };
  });
  if (doc.errors.length > 0) throw new ConfigError(source, problems);
  problems.push(...interpolate(doc, env, lines));
  const raw: unknown = doc.toJS() ?? {};
  const config = configSchema.check(raw, '', problems);
  if (config !== undefined) problems.push(...crossCheck(config));
  if (config === undefined || problems.length > 0) throw new ConfigError(source, problems);
  return deepFreeze(config);
}

export async function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): Promise<Config> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
    throw new SidecacheError('SC_ERR_CONFIG_READ', `cannot read configuration ${file}: ${reason}`, { cause: err });
  }
  return parseConfig(text, file, env);
}

export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}
