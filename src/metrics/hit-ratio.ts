/** The one hit ratio (`HIT_RATIO` in definitions.ts), as a number and as the label matchers PromQL uses. */
import { HIT_RATIO } from './definitions.js';

/** `served / answered` from counts by result, or null before anything could have been served from memory. */
export function hitRatio(counts: Readonly<Record<string, number>>): number | null {
  const sum = (results: readonly string[]): number => results.reduce((n, r) => n + (counts[r] ?? 0), 0);
  const answered = sum(HIT_RATIO.answered);
  return answered === 0 ? null : sum(HIT_RATIO.served) / answered;
}

/** The `result` matchers of the numerator and denominator, as the dashboard and the alerts write them. */
export const HIT_RATIO_MATCHERS = {
  served: `result=~"${HIT_RATIO.served.join('|')}"`,
  answered: `result=~"${HIT_RATIO.answered.join('|')}"`,
} as const;
