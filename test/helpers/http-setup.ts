import { afterEach } from 'vitest';
import type { SidecacheServer } from '../../src/server.js';
import { type Origin, type OriginHandler, startOrigin } from './origin.js';
import { httpListenerYaml, startSidecache } from './sidecache.js';

export interface HttpSetup {
  origin: Origin;
  server: SidecacheServer;
  /** Base URL of the listener. */
  base: string;
}

/** Registers cleanup for the calling test file and returns `setup(handler, extraYaml)`. */
export function useHttpSetup(): (handler: OriginHandler, extra?: string, head?: string) => Promise<HttpSetup> {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });
  return async (handler, extra = '', head = '') => {
    const origin = await startOrigin(handler);
    cleanup.push(() => origin.close());
    const server = await startSidecache(head + httpListenerYaml(origin.url, extra));
    cleanup.push(() => server.stop(100));
    return { origin, server, base: server.httpListeners[0]!.url };
  };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** An origin handler that answers `call N` with the given Cache-Control. */
export function counting(cacheControl = 'max-age=60'): OriginHandler {
  return (_req, res, n) => {
    res.writeHead(200, { 'cache-control': cacheControl });
    res.end(`call ${n}`);
  };
}
