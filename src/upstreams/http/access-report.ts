/** The HTTP listener's request reporter: the request event for metrics, and the access line when `log.access` is on. */
import { pathWithoutQuery } from '../access.js';
import { requestReporter } from '../report.js';
import type { ListenerContext } from './context.js';
import type { HttpListenerDeps } from './listener.js';

/** `ListenerContext.report`: the request event, and the access line when `log.access` is on. */
export function httpReporter(deps: Pick<HttpListenerDeps, 'store' | 'clock' | 'accessLog'>, listener: string, route?: string): ListenerContext['report'] {
  const publish = requestReporter(deps.store, 'http', listener, deps.clock, route);
  const { accessLog, clock } = deps;
  if (accessLog === undefined) return publish;
  return (result, started, upstreamMs, res) => {
    publish(result, started, upstreamMs);
    if (res === undefined) return;
    accessLog({
      protocol: 'http',
      listener,
      ...(route !== undefined && { route }),
      result,
      durationMs: clock.now() - started,
      method: res.req.method ?? '',
      path: pathWithoutQuery(res.req.url ?? ''),
      status: res.statusCode,
    });
  };
}
