/**
 * What a SQL text does, from the real PostgreSQL parser (libpg-query): the entry point that parses a
 * text and combines the classification of its statements (classify-statements.ts holds the rules).
 * Pure: catalog look-ups (views, partitions, function volatility) happen in catalog.ts on the result.
 */
import { loadModule, parseSync } from 'libpg-query';
import { type Classification, notCacheable, type SessionEffect } from './classification.js';
import { classifyStatement } from './classify-statements.js';
import type { Node } from './parse-tree.js';

export { type Classification, type RelationRef, type SessionEffect, SYSTEM_SCHEMAS } from './classification.js';

/** libpg-query is WebAssembly: load it once before the first classification. */
export function loadParser(): Promise<void> {
  return loadModule();
}

/** Classifies a SQL text (one or several statements). Never throws: unparsable SQL passes through. */
export function classify(sql: string): Classification {
  let stmts: { stmt?: Node }[];
  try {
    stmts = (parseSync(sql) as unknown as { stmts?: { stmt?: Node }[] }).stmts ?? [];
  } catch {
    // The server will answer with the syntax error itself; sidecache only passes it through.
    return notCacheable('does not parse');
  }
  if (stmts.length === 0) return notCacheable('empty');
  const parts = stmts.map((s) => classifyStatement(s.stmt ?? {}));
  if (parts.length === 1) return parts[0]!;
  return {
    ...notCacheable('several statements'),
    writes: parts.flatMap((p) => p.writes),
    invalidatesAll: parts.some((p) => p.invalidatesAll),
    cluster: parts.some((p) => p.cluster),
    cascade: parts.some((p) => p.cascade),
    session: combineSession(parts.map((p) => p.session)),
    transaction: parts.some((p) => p.transaction),
    commits: parts.some((p) => p.commits),
  };
}

function combineSession(effects: SessionEffect[]): SessionEffect {
  if (effects.includes('taint')) return 'taint';
  const last = effects.filter((e) => e !== 'none').at(-1);
  return effects.includes('set') ? 'set' : (last ?? 'none');
}
