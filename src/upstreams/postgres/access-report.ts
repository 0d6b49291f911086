/** The PostgreSQL listener's request reporter: the request event, the upstream's response class, and the access line when `log.access` is on. */
import { commandOf, sqlstateClass } from '../access.js';
import { requestReporter } from '../report.js';
import type { PgContext } from './context.js';
import type { PostgresListenerDeps } from './listener.js';

/** `PgContext.report`: the request event, the upstream's response class, and the access line when `log.access` is on. */
export function pgReporter(deps: Pick<PostgresListenerDeps, 'store' | 'clock' | 'accessLog' | 'onUpstreamResponse'>, listener: string): PgContext['report'] {
  const publish = requestReporter(deps.store, 'postgres', listener, deps.clock);
  const { onUpstreamResponse, accessLog, clock } = deps;
  return (result, started, upstreamMs, session, sql, sqlstate) => {
    publish(result, started, upstreamMs);
    if (sqlstate !== undefined) onUpstreamResponse?.(sqlstateClass(sqlstate));
    if (accessLog === undefined) return;
    const command = commandOf(sql);
    accessLog({
      protocol: 'postgres',
      listener,
      result,
      durationMs: clock.now() - started,
      ...(session !== undefined && { database: session.database, user: session.user }),
      ...(command !== undefined && { command }),
      ...(sqlstate !== undefined && { sqlstate }),
    });
  };
}
