import type { ConfigProblem } from '../errors.js';
import { isLoopback, parseListen } from './fields.js';
import type { Config, HttpListenerConfig } from './schema.js';

/** Rules that span keys: they run once every key on its own is valid. */
export function crossCheck(config: Config): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if (config.cache.maxEntryBytes > config.cache.maxBytes) {
    problems.push({ path: 'cache.maxEntryBytes', message: 'expected at most cache.maxBytes' });
  }
  const { admin } = config;
  if (admin.token === '' && !admin.allowUnauthenticated && !isLoopback(parseListen(admin.listen)?.host ?? '')) {
    problems.push({
      path: 'admin.token',
      message: `expected a token: admin.listen ${admin.listen} is reachable from other hosts, and without a token anyone there may invalidate, reload and explain; set admin.token (e.g. \${file:/run/secrets/sidecache-admin-token}), listen on 127.0.0.1, or set admin.allowUnauthenticated: true`,
    });
  }
  const names = new Map<string, string>();
  const addresses = new Map<string, string>([[admin.listen, 'admin.listen']]);
  const listeners = [...config.http.map((l, i) => ({ l, at: `http[${i}]` })), ...config.postgres.map((l, i) => ({ l, at: `postgres[${i}]` }))];
  for (const { l, at } of listeners) {
    const seen = names.get(l.name);
    if (seen !== undefined) problems.push({ path: `${at}.name`, message: `expected a unique name, "${l.name}" is also ${seen}.name` });
    names.set(l.name, at);
    const taken = addresses.get(l.listen);
    if (taken !== undefined && parseListen(l.listen)?.port !== 0) {
      problems.push({ path: `${at}.listen`, message: `expected a free address, ${l.listen} is also ${taken}` });
    }
    addresses.set(l.listen, `${at}.listen`);
  }
  config.http.forEach((l, i) => problems.push(...checkRoutes(l, `http[${i}]`)));
  return problems;
}

/** `upstream` and `routes` are exclusive, one is needed; route names are unique within the listener. */
function checkRoutes(listener: HttpListenerConfig, at: string): ConfigProblem[] {
  const { upstream, routes } = listener;
  if (upstream !== undefined && routes !== undefined) {
    return [{ path: `${at}.routes`, message: 'expected either upstream (one API) or routes (several), not both' }];
  }
  if (routes === undefined) {
    const problems =
      upstream === undefined ? [{ path: `${at}.upstream`, message: 'is required (or routes): expected a URL like "http://127.0.0.1:3000"' }] : [];
    if (listener.knownHostsOnly) problems.push({ path: `${at}.knownHostsOnly`, message: 'expected routes: knownHostsOnly applies to the hosts routes name' });
    return problems;
  }
  const problems: ConfigProblem[] = [];
  const names = new Map<string, number>();
  routes.forEach((route, i) => {
    if (route.name === undefined) return;
    const seen = names.get(route.name);
    if (seen !== undefined)
      problems.push({ path: `${at}.routes[${i}].name`, message: `expected a unique name, "${route.name}" is also ${at}.routes[${seen}].name` });
    names.set(route.name, i);
  });
  return problems;
}
