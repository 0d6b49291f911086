/**
 * What happens to a session at its turning points: when it begins (what its messages are handed
 * to), when it is ready (the first ReadyForQuery: may it use the cache, and carry catalog
 * questions?) and when each request ends (what it ran takes effect on the cache and the session,
 * and it is counted).
 */
import { Batches } from './batch.js';
import type { MessageTargets } from './client-messages.js';
import type { PgContext } from './context.js';
import { ReadThrough } from './read-through.js';
import type { ResponseQueue, UpstreamSlot } from './response-queue.js';
import { unsupportedServer } from './server-versions.js';
import { Session } from './session.js';
import { SessionChannel, type SessionChannelOptions } from './session-channel.js';
import { applySessionEffects, defaultsEpoch } from './session-apply.js';
import type { WriteEffects } from './write-effects.js';

/** A StartupMessage came with `params`: the session, what its messages go to, and its catalog channel. */
export function beginSession(
  ctx: PgContext,
  params: ReadonlyMap<string, string>,
  queue: ResponseQueue,
  io: Pick<MessageTargets, 'send' | 'forward'> & Pick<SessionChannelOptions, 'ready' | 'toClient'>,
): { targets: MessageTargets; channel: SessionChannel } {
  const session = new Session(ctx.name, params, defaultsEpoch(ctx));
  const { send } = io;
  const batches = new Batches({ session, queue, send, isCacheable: (sql) => ctx.planner.classify(sql).cacheable });
  const readThrough = new ReadThrough({ ctx, session, queue, batches, send });
  const channel = new SessionChannel({ session, queue, ready: io.ready, send, toClient: io.toClient });
  return { targets: { session, batches, readThrough, send, forward: io.forward }, channel };
}

/** The session has logged in: it carries catalog questions and warms the planner, or never uses the cache. */
export function sessionReady(ctx: PgContext, session: Session, channel: SessionChannel): void {
  // A replication connection speaks the walsender's commands: passed through, never asked on.
  if (session.replication) return session.refuseCache('a replication connection');
  // A server older than sidecache reads the catalog of: its session is passed through, uncached.
  const unsupported = unsupportedServer(session.parameter('server_version'));
  if (unsupported !== undefined) {
    session.refuseCache(unsupported.message);
    return ctx.catalogError(session.database, session.user, unsupported);
  }
  ctx.inBand?.attach(channel);
  ctx.planner.warm(session.database, session.user);
}

/**
 * A request's response ended with `status`: what it ran takes effect, and it is counted. Returns
 * the publication of the invalidations it made, when it made any (its ReadyForQuery waits for it).
 */
export function requestEnded(ctx: PgContext, session: Session, writes: WriteEffects, slot: UpstreamSlot, status: number): Promise<void> | undefined {
  const before = session.txStatus;
  session.txStatus = status;
  const published = writes.apply(session, slot.executed, slot.unknown);
  const { planner } = ctx;
  const cached = (sql: string) => planner.peek(session.database, session.user, sql)?.cacheable === true;
  const clean = !session.tainted;
  // Texts sidecache could not read as the server did may have changed the session unseen.
  if (!session.readsAsServer && slot.executed.length > 0)
    session.taint('ran statements while client_encoding or standard_conforming_strings hid them from the parser');
  const hidden = {
    mayBeUserFunction: (calls: readonly string[]) => planner.mayBeUserFunction(session.database, session.user, calls),
    runsHiddenCalls: (sql: string) => planner.refusedForViewCode(session.database, session.user, sql),
  };
  applySessionEffects(session, { executed: slot.executed, unknown: slot.unknown, errored: slot.errored, before, after: status }, cached, ctx, hidden);
  // Why a session stopped using the cache (the operator's question when the hit ratio drops).
  if (clean && session.tainted) ctx.log.debug('session tainted: no cache use until DISCARD ALL', { reason: session.taintedBy });
  if (slot.result !== undefined) ctx.report(slot.result, slot.started, ctx.clock.now() - slot.started, session, slot.executed[0], slot.sqlstate ?? '00000');
  return published;
}
