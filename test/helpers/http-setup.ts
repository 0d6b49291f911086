import { afterEach } from 'vitest';
import { ManualClock } from '../../src/clock.js';
import type { SidecacheServer } from '../../src/server.js';
import { type Origin, type OriginHandler, startOrigin } from './origin.js';
import { httpListenerYaml, startSidecache } from './sidecache.js';

export interface HttpSetup {
  origin: Origin;
  server: SidecacheServer;
  /** Base URL of the listener. */
  base: string;
}

/** The clock of a setup that moves time by hand; sidecache and the origin's `Date` both read it. */
export interface ClockedHttpSetup extends HttpSetup {
  clock: ManualClock;
}

/** Where a manual clock starts: a real date, so `Date` headers read like real ones. */
export const CLOCK_START = Date.parse('2025-01-01T00:00:00Z');

type Setup<S> = (handler: OriginHandler, extra?: string, head?: string) => Promise<S>;

/**
 * Registers cleanup for the calling test file and returns `setup(handler, extraYaml)`. With
 * `manualClock`, each setup gets its own `ManualClock` (sidecache's clock and the origin's `Date`):
 * a test moves time with `clock.advance(ms)` instead of sleeping.
 */
export function useHttpSetup(): Setup<HttpSetup>;
export function useHttpSetup(options: { manualClock: true }): Setup<ClockedHttpSetup>;
export function useHttpSetup(options: { manualClock?: boolean } = {}): Setup<HttpSetup | ClockedHttpSetup> {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });
  return async (handler, extra = '', head = '') => {
    const clock = options.manualClock === true ? new ManualClock(CLOCK_START) : undefined;
    const origin = await startOrigin(handler, { clock });
    cleanup.push(() => origin.close());
    const server = await startSidecache(head + httpListenerYaml(origin.url, extra), { clock });
    cleanup.push(() => server.stop(100));
    return { origin, server, base: server.httpListeners[0]!.url, ...(clock !== undefined && { clock }) };
  };
}

/** An origin handler that answers `call N` with the given Cache-Control. */
export function counting(cacheControl = 'max-age=60'): OriginHandler {
  return (_req, res, n) => {
    res.writeHead(200, { 'cache-control': cacheControl });
    res.end(`call ${n}`);
  };
}
