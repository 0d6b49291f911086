/** What completed statements do to the session: SET, RESET and what taints it. */
import type { Planner } from './planner.js';
import type { Session } from './session.js';

/** Applies the session changes (SET / RESET / set_config, temporary objects) of one finished request. */
export function applySessionEffects(planner: Planner, session: Session, executed: readonly string[]): void {
  for (const sql of executed) {
    const c = planner.classify(sql);
    if (c.session === 'set') session.noteSet(sql);
    else if (c.session === 'reset') session.reset();
    else if (c.session === 'taint') session.tainted = true;
  }
}
