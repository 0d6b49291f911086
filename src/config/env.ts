import type { ConfigProblem } from '../errors.js';

const REFERENCE = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Replaces `${NAME}` and `${NAME:-default}` from `env` before the YAML is parsed; `$$` stands
 * for a literal `$`. `${NAME:-default}` uses the default when NAME is unset or empty, as a POSIX
 * shell does. An unset NAME without a default is a problem reported with its line. Whole-line
 * comments are left alone, so a commented-out example does not demand its variables.
 */
export function interpolate(text: string, env: NodeJS.ProcessEnv): { text: string; problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = [];
  const lines = text.split('\n').map((line, index) => {
    if (/^\s*#/.test(line)) return line;
    return line.replace(REFERENCE, (whole: string, name: string | undefined, fallback: string | undefined) => {
      if (name === undefined) return '$';
      const value = env[name];
      if (value !== undefined && value !== '') return value;
      if (fallback !== undefined) return fallback;
      if (value === '') return '';
      problems.push({ path: '', message: `line ${index + 1}: environment variable ${name} is not set (write \${${name}:-default} to allow that)` });
      return whole;
    });
  });
  return { text: lines.join('\n'), problems };
}
