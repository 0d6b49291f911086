import { readFileSync } from 'node:fs';
import { SidecacheError } from '../errors.js';

/** A PEM file named in the config; a missing or unreadable one fails at start, naming its key. */
export function readPem(path: string, keyPath: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new SidecacheError('SC_ERR_CONFIG_READ', `${keyPath}: cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
}
