/**
 * Applies a finished request's effects (`session-effects.ts`) to `Session` from what the server
 * confirmed: a request's effects count only once it succeeded, and a session-level SET inside a
 * transaction block only once that block committed
 * (https://www.postgresql.org/docs/current/sql-set.html). Code a statement runs without showing
 * it (a user overload of a neutral name, a view's body) taints the session once the catalog says so.
 */
import { analysisOf, type Effect, NONE, taint } from './session-effects.js';
import type { Session } from './session.js';

/** How one request that went upstream ended. */
export interface RequestOutcome {
  /** SQL texts it executed, in order. */
  executed: readonly string[];
  /** It ran something sidecache could not see (a FunctionCall, an Execute of an unknown portal). */
  unknown: boolean;
  /** The server answered an ErrorResponse. */
  errored: boolean;
  /** ReadyForQuery status before and after the request. */
  before: number;
  after: number;
}

/** Per listener, how many times role or database defaults were changed through it. */
const epochs = new WeakMap<object, number>();

/**
 * The epoch of role and database defaults (ALTER ROLE/DATABASE … SET) for a session beginning now:
 * sessions that began before such a change run with the old defaults, later ones with the new,
 * so the two never share keys.
 */
export function defaultsEpoch(listener: object): number {
  return epochs.get(listener) ?? 0;
}

/** What the catalog says of code a statement runs without showing it. */
export interface HiddenCode {
  /** Whether a user function may answer one of these calls (`name/argument count`) in the session's database. */
  mayBeUserFunction(calls: readonly string[]): boolean | Promise<boolean>;
  /** Whether the statement runs calls its text does not show (a view's body) that the planner refused. */
  runsHiddenCalls(sql: string): boolean | Promise<boolean>;
}

/**
 * Taints the session for code its statement does not show, now when the planner knows, else once
 * the catalog has answered: until then the session keeps from the cache (`Session.holdUntil`).
 */
function hiddenCode(session: Session, sql: string, neutralCalls: readonly string[], hidden: HiddenCode, effects: Effect[]): void {
  const reasons = [`calls ${neutralCalls.join(', ')}, which a user function may answer`, 'reads a view whose body calls functions that may change the session'];
  const verdicts = [hidden.mayBeUserFunction(neutralCalls), hidden.runsHiddenCalls(sql)];
  const now = verdicts.findIndex((v) => v === true);
  if (now !== -1) return void effects.push(taint(reasons[now]!));
  if (!verdicts.some((v) => v instanceof Promise)) return;
  session.holdUntil(
    Promise.all(verdicts).then((answers) => {
      const yes = answers.findIndex((v) => v);
      if (yes !== -1) session.taint(reasons[yes]!);
    }),
  );
}

/**
 * Applies one finished request to the session. `cached(sql)` says whether the planner vouched
 * for a SQL text as cacheable: such a text changes nothing in the session and is not parsed again.
 */
export function applySessionEffects(session: Session, outcome: RequestOutcome, cached: (sql: string) => boolean, listener: object, hidden?: HiddenCode): void {
  const effects: Effect[] = [];
  if (outcome.unknown) effects.push(taint('a FunctionCall, or an Execute of a portal sidecache does not know'));
  for (const sql of outcome.executed) {
    // A statement the planner vouched for is one plain SELECT whose calls are all IMMUTABLE (or
    // allowed by the operator), without INTO or temporary relations: not parsed again. It still
    // counts as a statement of the request (which one failed is not known when several ran).
    if (cached(sql)) {
      effects.push(NONE);
      continue;
    }
    const { effects: own, neutralCalls } = analysisOf(sql);
    // Code the text does not show may change the session: a user overload answering a "neutral"
    // name, a view's body (refused by the planner for the calls it makes).
    if (hidden !== undefined) hiddenCode(session, sql, neutralCalls, hidden, effects);
    for (const e of own) {
      if (e.kind === 'defaults') epochs.set(listener, defaultsEpoch(listener) + 1);
      effects.push(e);
    }
  }
  session.endRequest(effects, outcome.errored, outcome.before, outcome.after);
}
