import { readFileSync } from 'node:fs';
import { type Document, type LineCounter, visit } from 'yaml';
import type { ConfigProblem } from '../errors.js';

const REFERENCE = /\$\$|\$\{file:([^}]+)\}|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/** A plain (unquoted) value that is one reference, and what YAML would read its result as. */
const WHOLE = /^\$\{[^}]*\}$/;
const NUMBER = /^[-+]?(?:\d+|\d+\.\d*|\.\d+)(?:[eE][-+]?\d+)?$/;

/**
 * Replaces `${NAME}`, `${NAME:-default}` and `${file:/path}` in the values of a parsed document.
 * Values, not text: a secret holding `#`, `"` or a newline stays one value (substituted into the
 * text before parsing, a token starting with `#` became a comment). `$$` stands for a literal
 * `$`. `${NAME:-default}` uses the default when NAME is unset or empty, as a POSIX shell does;
 * `${file:/run/secrets/x}` is the file's content without its final newline (Docker and Kubernetes
 * secrets mounted as files). An unset NAME without a default, or a file that cannot be read, is a
 * problem reported with its line. Comments are not values, so a commented-out example does not
 * demand its variables. A plain value that is one reference reads as YAML would read the result
 * when it is a number or a boolean (`port: ${PORT}`).
 */
export function interpolate(doc: Document, env: NodeJS.ProcessEnv, lines: LineCounter): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  visit(doc, {
    Scalar(key, node) {
      if (key === 'key' || typeof node.value !== 'string' || !node.value.includes('$')) return;
      const line = lines.linePos(node.range?.[0] ?? 0).line;
      const original = node.value;
      const replaced = original.replace(REFERENCE, (whole: string, file: string | undefined, name: string | undefined, fallback: string | undefined) => {
        if (file !== undefined) {
          try {
            return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
          } catch (err) {
            problems.push({
              path: '',
              message: `line ${line}: cannot read ${file} for \${file:${file}} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
            });
            return whole;
          }
        }
        if (name === undefined) return '$';
        const value = env[name];
        if (value !== undefined && value !== '') return value;
        if (fallback !== undefined) return fallback;
        if (value === '') return '';
        problems.push({ path: '', message: `line ${line}: environment variable ${name} is not set (write \${${name}:-default} to allow that)` });
        return whole;
      });
      node.value = node.type === 'PLAIN' && WHOLE.test(original) ? scalar(replaced) : replaced;
    },
  });
  return problems;
}

/** A plain value's result as YAML reads numbers and booleans; anything else stays a string. */
function scalar(text: string): string | number | boolean {
  if (text === 'true' || text === 'false') return text === 'true';
  return NUMBER.test(text) ? Number(text) : text;
}
