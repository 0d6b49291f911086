import type { WarningCode } from './errors.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export function isLogLevel(value: string): value is LogLevel {
  return Object.hasOwn(LEVELS, value);
}

type Fields = Record<string, unknown>;
type Sink = (line: string) => void;

/**
 * JSON lines on stderr, one object a line: `{"time","level","msg",...bindings,...fields}`.
 * Callers never pass secrets (tokens, passwords, SQL parameters); URLs go through `redactUrl` (redact.ts).
 */
export class Logger {
  readonly #threshold: number;
  readonly #bindings: Fields;
  readonly #sink: Sink;
  readonly #warned: Set<string>;

  constructor(options: { level?: LogLevel; bindings?: Fields; sink?: Sink; warned?: Set<string> } = {}) {
    this.#threshold = LEVELS[options.level ?? 'info'];
    this.#bindings = options.bindings ?? {};
    this.#sink = options.sink ?? ((line) => process.stderr.write(line));
    this.#warned = options.warned ?? new Set();
  }

  child(bindings: Fields): Logger {
    return new Logger({
      level: this.level,
      bindings: { ...this.#bindings, ...bindings },
      sink: this.#sink,
      warned: this.#warned,
    });
  }

  get level(): LogLevel {
    return (Object.keys(LEVELS) as LogLevel[]).find((l) => LEVELS[l] === this.#threshold) ?? 'info';
  }

  debug(msg: string, fields?: Fields): void {
    this.#write('debug', msg, fields);
  }

  info(msg: string, fields?: Fields): void {
    this.#write('info', msg, fields);
  }

  warn(msg: string, fields?: Fields): void {
    this.#write('warn', msg, fields);
  }

  error(msg: string, fields?: Fields): void {
    this.#write('error', msg, fields);
  }

  /** Logs a coded warning the first time this code is seen for this subject, then stays quiet. */
  warnOnce(code: WarningCode, msg: string, subject = ''): void {
    const id = `${code}\u0000${subject}`;
    if (this.#warned.has(id)) return;
    this.#warned.add(id);
    this.#write('warn', msg, { code });
  }

  #write(level: LogLevel, msg: string, fields?: Fields): void {
    if (LEVELS[level] < this.#threshold) return;
    const record = { time: new Date().toISOString(), level, msg, ...this.#bindings, ...fields };
    this.#sink(JSON.stringify(record, errorReplacer) + '\n');
  }
}

function errorReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return code === undefined ? { message: value.message } : { message: value.message, code };
  }
  return value;
}
