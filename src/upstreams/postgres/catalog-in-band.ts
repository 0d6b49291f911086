/**
 * The catalog asked in band: over the upstream sessions clients already opened, so it needs no
 * credentials of its own and reads with the permissions of a client of that database. A question
 * goes to a session of its database that is idle outside a transaction (one of the asking user's
 * first); when none is, it waits for the first that becomes so. The answers sidecache asks for
 * (relation kinds, view bodies, partitions, foreign keys, triggers, function volatility) are the
 * same for every user, so any session of the database may carry any question.
 */
import type { Millis } from '../../units.js';
import type { CatalogTransport } from './catalog-transport.js';
import { QuestionReply, questionBytes } from './in-band-question.js';

/** Questions of one database that may wait for an idle session; more are answered "cannot be asked" at once (clients sending new texts faster than sessions go idle). */
const MAX_WAITING = 1000;

/** A client's upstream session, as the in-band catalog sees it. */
export interface CatalogChannel {
  readonly database: string;
  readonly user: string;
  /** Whether a question can be sent now: nothing outstanding upstream, idle outside a transaction, texts read as UTF-8. */
  readonly free: boolean;
  /** Sends `bytes` upstream; every upstream frame goes to `reply` until it says the question is settled; `lost` if the session ends first. */
  ask(bytes: Buffer, reply: QuestionReply<unknown>, lost: () => void): void;
}

interface Question {
  database: string;
  user: string;
  text: string;
  values: readonly unknown[];
  bytes: Buffer;
  resolve(rows: unknown[]): void;
  reject(err: unknown): void;
  /** Set while it waits for a free session: rejects it at `waitMs`. */
  deadline: NodeJS.Timeout | undefined;
}

/**
 * Whether a question failed on the fallback, with no client session of its database open: no client
 * was refused caching by it, so it is not reported as a catalog error (/cache/explain shows it).
 */
export function askedWithoutSession(err: unknown): boolean {
  return (err as { withoutSession?: boolean } | undefined)?.withoutSession === true;
}

export class InBandCatalog implements CatalogTransport {
  readonly #channels = new Map<string, Set<CatalogChannel>>();
  readonly #waiting = new Map<string, Question[]>();
  readonly #firstSession = new Map<string, (() => void)[]>();
  readonly #fallback: CatalogTransport;
  readonly #waitMs: Millis;

  /**
   * `fallback` answers questions about a database no client has a session with (/cache/explain);
   * a question waits at most `waitMs` for a session of its database to be idle.
   */
  constructor(fallback: CatalogTransport, waitMs: Millis) {
    this.#fallback = fallback;
    this.#waitMs = waitMs;
  }

  /** A session is ready: it may carry questions from now on. */
  attach(channel: CatalogChannel): void {
    let set = this.#channels.get(channel.database);
    if (set === undefined) this.#channels.set(channel.database, (set = new Set()));
    set.add(channel);
    for (const fn of this.#firstSession.get(channel.database) ?? []) fn();
    this.#firstSession.delete(channel.database);
    this.offer(channel);
  }

  /** A session ended; when it was its database's last, the questions waiting for one go to the fallback. */
  detach(channel: CatalogChannel): void {
    const set = this.#channels.get(channel.database);
    set?.delete(channel);
    if (set?.size !== 0) return;
    this.#channels.delete(channel.database);
    const waiting = this.#waiting.get(channel.database) ?? [];
    this.#waiting.delete(channel.database);
    for (const question of waiting) this.#dispatch(question);
  }

  /** `channel` may have become free: it takes the oldest question of its database waiting for one. */
  offer(channel: CatalogChannel): void {
    const waiting = this.#waiting.get(channel.database);
    if (waiting === undefined || !channel.free) return;
    const question = waiting.shift()!;
    if (waiting.length === 0) this.#waiting.delete(channel.database);
    this.#send(question, channel);
  }

  /** Runs `fn` once a client session of `database` is ready (at once if one is). */
  whenSession(database: string, fn: () => void): void {
    if (this.#channels.has(database)) return fn();
    const list = this.#firstSession.get(database) ?? [];
    list.push(fn);
    this.#firstSession.set(database, list);
  }

  query<R>(database: string, user: string, text: string, values: readonly unknown[]): Promise<R[]> {
    return new Promise<R[]>((resolve, reject) => {
      const question: Question = {
        database,
        user,
        text,
        values,
        bytes: questionBytes(text, values),
        resolve: resolve as (rows: unknown[]) => void,
        reject,
        deadline: undefined,
      };
      this.#dispatch(question);
    });
  }

  /**
   * On a free session of the database (the asking user's first), else queued until one is free
   * or `waitMs` has passed; with no session of the database open, on the fallback.
   */
  #dispatch(question: Question): void {
    const { database, user } = question;
    const channels = this.#channels.get(database);
    if (channels === undefined) {
      clearTimeout(question.deadline);
      this.#fallback.query<unknown>(database, user, question.text, question.values).then(question.resolve, (err: unknown) => {
        question.reject(Object.assign(err instanceof Error ? err : new Error(String(err)), { withoutSession: true }));
      });
      return;
    }
    const free = [...channels].filter((c) => c.free).sort((a, b) => Number(b.user === user) - Number(a.user === user))[0];
    if (free !== undefined) return this.#send(question, free);
    question.deadline ??= setTimeout(() => {
      const waiting = this.#waiting.get(database);
      const at = waiting?.indexOf(question) ?? -1;
      if (at === -1) return;
      waiting!.splice(at, 1);
      if (waiting!.length === 0) this.#waiting.delete(database);
      question.reject(new Error(`no session of database "${database}" was idle outside a transaction within ${this.#waitMs} ms (timeout)`));
    }, this.#waitMs).unref();
    const waiting = this.#waiting.get(database) ?? [];
    if (waiting.length >= MAX_WAITING) {
      clearTimeout(question.deadline);
      return question.reject(new Error(`${MAX_WAITING} catalog questions of database "${database}" are already waiting for an idle session (timeout)`));
    }
    waiting.push(question);
    this.#waiting.set(database, waiting);
  }

  /** A session that closes before the reply ends takes nothing with it: the question goes to another. */
  #send(question: Question, channel: CatalogChannel): void {
    const reply = new QuestionReply<unknown>(
      (rows) => {
        clearTimeout(question.deadline);
        question.resolve(rows);
      },
      (err) => {
        clearTimeout(question.deadline);
        question.reject(err);
      },
    );
    channel.ask(question.bytes, reply, () => {
      clearTimeout(question.deadline);
      question.deadline = undefined;
      this.#dispatch(question);
    });
  }

  /** Nothing of sidecache's own holds a database open but the fallback's connections. */
  closeDatabase(database: string): Promise<void> {
    return this.#fallback.closeDatabase(database);
  }

  async close(): Promise<void> {
    for (const [, waiting] of this.#waiting) {
      for (const q of waiting) {
        clearTimeout(q.deadline);
        q.reject(new Error('the listener stopped'));
      }
    }
    this.#waiting.clear();
    this.#firstSession.clear();
    await this.#fallback.close();
  }
}
