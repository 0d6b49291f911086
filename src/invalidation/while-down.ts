/** How the store serves while buses are down: the strictest `whileDown` of those down. */
import type { Degradation } from '../cache/types.js';
import type { BusRunner } from './runner.js';

/** The Cache-Status `detail` (and `/readyz` word) of answers degraded by a bus outage. */
export const BUS_DOWN = 'bus-down';

/**
 * Undefined while every bus is up (a reload's predecessor standing in counts as up); else the
 * smallest `maxAgeMs` of the buses down (0, `bypass`, wins): each bus down may have lost messages
 * for any entry, so the strictest setting of them all applies.
 */
export function degradationOf(buses: readonly BusRunner[]): Degradation | undefined {
  let maxAgeMs: number | undefined;
  for (const bus of buses) {
    if (bus.reason !== undefined) maxAgeMs = Math.min(maxAgeMs ?? Infinity, bus.whileDown.maxAgeMs);
  }
  return maxAgeMs === undefined ? undefined : { reason: BUS_DOWN, maxAgeMs };
}

/** How the store serves, in words for `/readyz` and the live page: `bypass` or `ttl:<ms>ms`, or undefined when not degraded. */
export function servingMode(degradation: Degradation | undefined): string | undefined {
  if (degradation === undefined) return undefined;
  return degradation.maxAgeMs === 0 ? `bypass (${degradation.reason})` : `ttl:${degradation.maxAgeMs}ms (${degradation.reason})`;
}
