import type { WarningCode } from './errors.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export function isLogLevel(value: string): value is LogLevel {
  return Object.hasOwn(LEVELS, value);
}

type Fields = Record<string, unknown>;
type Sink = (line: string) => void;

/**
 * How many subjects the warn-once and rate-limited warnings remember. Subjects can come from
 * input (a bus, a database and user), so memory must not grow with it; past this, the oldest
 * subject is forgotten and may warn again.
 */
const MAX_SUBJECTS = 1_000;

/** What a rate-limited warning remembers of its subject: when it last wrote, and what it held back since. */
interface Limited {
  last: number;
  suppressed: number;
}

/**
 * JSON lines on stderr, one object a line: `{"time","level","msg",...bindings,...fields}`.
 * Callers never pass secrets (tokens, passwords, SQL parameters); URLs go through `redactUrl` (redact.ts).
 */
export class Logger {
  readonly #threshold: number;
  readonly #bindings: Fields;
  readonly #sink: Sink;
  readonly #warned: Set<string>;
  readonly #limited: Map<string, Limited>;
  readonly #now: () => number;

  constructor(options: { level?: LogLevel; bindings?: Fields; sink?: Sink; warned?: Set<string>; limited?: Map<string, Limited>; now?: () => number } = {}) {
    this.#threshold = LEVELS[options.level ?? 'info'];
    this.#bindings = options.bindings ?? {};
    this.#sink = options.sink ?? ((line) => process.stderr.write(line));
    this.#warned = options.warned ?? new Set();
    this.#limited = options.limited ?? new Map();
    this.#now = options.now ?? Date.now;
  }

  child(bindings: Fields): Logger {
    return new Logger({
      level: this.level,
      bindings: { ...this.#bindings, ...bindings },
      sink: this.#sink,
      warned: this.#warned,
      limited: this.#limited,
      now: this.#now,
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
    if (this.#warned.size > MAX_SUBJECTS) this.#warned.delete(this.#warned.values().next().value!);
    this.#write('warn', msg, { code });
  }

  /**
   * Logs a coded warning at most once per `everyMs` for this subject (a reason, never a payload);
   * the ones held back are counted and reported as `suppressed` on the next line written.
   */
  warnEvery(code: WarningCode, msg: string, subject: string, everyMs: number, fields?: Fields): void {
    const id = `${code}\u0000${subject}`;
    const now = this.#now();
    const seen = this.#limited.get(id);
    if (seen !== undefined && now - seen.last < everyMs) {
      seen.suppressed++;
      return;
    }
    this.#limited.delete(id);
    this.#limited.set(id, { last: now, suppressed: 0 });
    if (this.#limited.size > MAX_SUBJECTS) this.#limited.delete(this.#limited.keys().next().value!);
    this.#write('warn', msg, { code, ...fields, ...(seen !== undefined && seen.suppressed > 0 && { suppressed: seen.suppressed }) });
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
