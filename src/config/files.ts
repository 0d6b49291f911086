/**
 * The files a configuration names (TLS certificates and keys, CA bundles), opened and read as PEM:
 * `sidecache check` reports every problem with its key path and file, and `sidecache start` refuses
 * to start on one, instead of failing in OpenSSL with a stack trace.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ConfigProblem } from '../errors.js';
import type { Config } from './schema.js';

type PemKind = 'certificate' | 'private key';

/** Every file of `config` that cannot be read or does not hold the PEM its key expects. */
export function fileProblems(config: Config): ConfigProblem[] {
  const files: { path: string; file: string; kind: PemKind }[] = [];
  config.postgres.forEach((l, i) => {
    if (l.tls === undefined) return;
    files.push({ path: `postgres[${i}].tls.cert`, file: l.tls.cert, kind: 'certificate' });
    files.push({ path: `postgres[${i}].tls.key`, file: l.tls.key, kind: 'private key' });
  });
  config.http.forEach((l, i) => {
    if (l.ca !== undefined) files.push({ path: `http[${i}].ca`, file: l.ca, kind: 'certificate' });
    l.routes?.forEach((r, j) => {
      if (r.ca !== undefined) files.push({ path: `http[${i}].routes[${j}].ca`, file: r.ca, kind: 'certificate' });
    });
  });
  return files.flatMap(({ path, file, kind }) => {
    const problem = pemProblem(file, kind);
    return problem === undefined ? [] : [{ path, message: `${file}: ${problem}` }];
  });
}

function pemProblem(file: string, kind: PemKind): string | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    return `cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
  }
  try {
    if (kind === 'certificate') new X509Certificate(text);
    else createPrivateKey(text);
    return undefined;
  } catch (err) {
    return `expected a PEM ${kind} (${(err as Error).message})`;
  }
}
