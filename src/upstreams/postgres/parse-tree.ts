/** Reading libpg-query's JSON parse tree: its node shape, name lists and relation references. */
import type { RelationRef } from './classification.js';

export type Node = Record<string, unknown>;

export const names = (list: unknown): string[] =>
  ((list as Node[] | undefined) ?? []).flatMap((n) => ((n.String as Node | undefined)?.sval as string | undefined) ?? []);

export function relationOf(node: unknown): RelationRef[] {
  const rv = (node as Node | undefined)?.RangeVar as Node | undefined;
  const target = rv ?? (node as Node | undefined);
  if (target === undefined || typeof target.relname !== 'string') return [];
  return [{ schema: target.schemaname as string | undefined, name: target.relname }];
}

export function isTemp(node: unknown): boolean {
  const rv = ((node as Node | undefined)?.RangeVar as Node | undefined) ?? (node as Node | undefined);
  return rv?.relpersistence === 't';
}
