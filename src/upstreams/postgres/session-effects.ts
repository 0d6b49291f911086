/**
 * What completed statements do to the session (SET, RESET, DISCARD ALL, transactions, DEALLOCATE,
 * and what taints it), read from each statement's parse tree; `session-apply.ts` applies them to
 * `Session` from what the server confirmed.
 *
 * Default deny: a statement is read from its own parse tree, and any kind of statement, call or
 * setting this module does not know to be harmless taints the session (no cache use until a
 * successful DISCARD ALL or a new connection).
 */
import { parseSync } from 'libpg-query';
import { LRUCache } from 'lru-cache';
import { names, type Node } from './parse-tree.js';
import { sqlShape } from './sql-shape.js';
import type { Session, SettingChange } from './session.js';
import { HARMLESS_STATEMENTS, SESSION_NEUTRAL_FUNCTIONS } from './session-neutral.js';

/** One statement's effect on the session. */
export type Effect =
  | { kind: 'none' }
  | { kind: 'taint'; why: string; evenIfFailed?: true }
  | SettingChange
  | { kind: 'discard-all' }
  | { kind: 'begin' }
  | { kind: 'commit'; chain: boolean }
  | { kind: 'rollback'; chain: boolean }
  | { kind: 'rollback-to' }
  | { kind: 'prepare-transaction' }
  | { kind: 'deallocate'; name: string | undefined }
  | { kind: 'defaults' };

export const NONE: Effect = { kind: 'none' };
export const taint = (why: string): Effect => ({ kind: 'taint', why });

/** Old spellings the server maps to current names (guc.c map_old_guc_names). */
const SETTING_ALIASES: Readonly<Record<string, string>> = { sort_mem: 'work_mem', vacuum_mem: 'maintenance_work_mem' };

const MEMO_SIZE = 10_000;

/** What a SQL text does to the session: one effect per statement, and the session-neutral built-ins it calls by name. */
export interface Analysis {
  effects: readonly Effect[];
  /** `name/argument count` of each call the allow list let through: neutral only if no user function answers it. */
  neutralCalls: readonly string[];
  /** `name/argument count` of every call in every statement, of any kind (DECLARE, COPY (query), …). */
  allCalls: readonly string[];
}

const memo = new LRUCache<string, Analysis>({ max: MEMO_SIZE });

/** The effects of a SQL text, one per statement; unparsable text changes nothing (the server refuses it too). */
export function sessionEffects(sql: string): readonly Effect[] {
  return analysisOf(sql).effects;
}

/** Analyses that change nothing in the session, by shape (sql-shape.ts): texts that differ only in constants share them. */
const shapes = new LRUCache<string, Analysis>({ max: MEMO_SIZE });

/** The last text analysed and its analysis: a request's texts are asked about twice in a row (write-effects.ts, then here). */
let last: { sql: string; analysis: Analysis } | undefined;

export function analysisOf(sql: string): Analysis {
  if (last?.sql === sql) return last.analysis;
  const analysis = rememberedAnalysis(sql);
  last = { sql, analysis };
  return analysis;
}

function rememberedAnalysis(sql: string): Analysis {
  let analysis = memo.get(sql);
  if (analysis !== undefined) return analysis;
  const shape = sqlShape(sql);
  analysis = shape === undefined ? undefined : shapes.get(shape);
  if (analysis !== undefined) return analysis;
  analysis = analyze(sql);
  // A SET's value, a setting read by name, a DO block are constants: only an analysis without
  // effects (a plain write's) is shared by its shape; the calls it lists are names, not constants.
  if (shape !== undefined && analysis.effects.every((e) => e.kind === 'none')) shapes.set(shape, analysis);
  else memo.set(sql, analysis);
  return analysis;
}

function analyze(sql: string): Analysis {
  let stmts: { stmt?: Node }[];
  try {
    stmts = (parseSync(sql) as unknown as { stmts?: { stmt?: Node }[] }).stmts ?? [];
  } catch {
    // The server refuses it too (then it did nothing), or reads it otherwise than this parser (a
    // newer syntax, a replication command): then nothing is known of what it did.
    return { effects: [taint('a statement sidecache cannot parse')], neutralCalls: [], allCalls: [] };
  }
  const neutralCalls: string[] = [];
  const effects = stmts.map((s) => statementEffect(s.stmt ?? {}, neutralCalls));
  const allCalls: string[] = [];
  collectCalls(stmts, allCalls);
  return { effects, neutralCalls, allCalls };
}

function collectCalls(node: unknown, out: string[]): void {
  if (node === null || typeof node !== 'object') return;
  if (Array.isArray(node)) {
    for (const item of node) collectCalls(item, out);
    return;
  }
  for (const [key, value] of Object.entries(node as Node)) {
    if (key === 'FuncCall') {
      const v = value as Node;
      const name = names(v.funcname).at(-1);
      if (name !== undefined) out.push(`${name}/${((v.args as unknown[] | undefined) ?? []).length}`);
    }
    collectCalls(value, out);
  }
}

/**
 * Every call of a SQL text (`name/argument count`), in any statement and any position (a cursor's
 * query, COPY's): one a user function answers may write tables no statement names.
 */
export function callsOf(sql: string): readonly string[] {
  return analysisOf(sql).allCalls;
}

function statementEffect(stmt: Node, neutralCalls: string[]): Effect {
  const [type, body] = (Object.entries(stmt)[0] ?? ['', {}]) as [string, Node];
  switch (type) {
    case 'VariableSetStmt':
      return setEffect(body);
    case 'DiscardStmt':
      return body.target === 'DISCARD_ALL' ? { kind: 'discard-all' } : NONE;
    case 'TransactionStmt':
      return transactionEffect(body);
    case 'DoStmt':
    case 'CallStmt':
      // A DO block or procedure may COMMIT part way: what it did before a later error stays.
      return { kind: 'taint', why: `${type === 'DoStmt' ? 'DO' : 'CALL'} may change the session`, evenIfFailed: true };
    case 'AlterRoleSetStmt':
    case 'AlterDatabaseSetStmt':
      // Not this session's settings: those of sessions that begin after it (see `defaultsEpoch`).
      return { kind: 'defaults' };
    case 'DeallocateStmt':
      return { kind: 'deallocate', name: body.isall === true ? undefined : (body.name as string | undefined) };
    case 'ExplainStmt': {
      // EXPLAIN runs its statement only with ANALYZE.
      const analyzes = ((body.options as Node[] | undefined) ?? []).some((o) => (o.DefElem as Node | undefined)?.defname === 'analyze');
      return analyzes ? statementEffect((body.query as Node | undefined) ?? {}, neutralCalls) : NONE;
    }
  }
  if (!HARMLESS_STATEMENTS.has(type)) return taint(`${type || 'an unknown statement'} may change the session`);
  return treeProblem(body, neutralCalls);
}

/** Temporary relations and objects (they exist, or shadow permanent ones, for this session alone), SELECT INTO, and calls not known to be session-neutral. */
function treeProblem(body: Node, neutralCalls: string[]): Effect {
  const found = { why: undefined as string | undefined, neutralCalls };
  scan(body, found);
  return found.why === undefined ? NONE : taint(found.why);
}

function scan(node: unknown, found: { why: string | undefined; neutralCalls: string[] }): void {
  if (found.why !== undefined || node === null || typeof node !== 'object') return;
  if (Array.isArray(node)) {
    // A qualified name in pg_temp (a function, type, domain, operator…): objects of this session alone.
    if (((node[0] as Node | undefined)?.String as Node | undefined)?.sval === 'pg_temp') {
      found.why = 'a temporary object';
      return;
    }
    for (const item of node) scan(item, found);
    return;
  }
  for (const [key, value] of Object.entries(node as Node)) {
    const v = value as Node;
    if (key === 'intoClause') found.why = 'SELECT INTO';
    else if ((key === 'RangeVar' || key === 'rel' || key === 'relation') && isTemporary(v)) found.why = 'a temporary relation';
    else if (key === 'FuncCall') {
      const funcname = names(v.funcname);
      const neutral = (funcname.length === 1 || (funcname.length === 2 && funcname[0] === 'pg_catalog')) && SESSION_NEUTRAL_FUNCTIONS.has(funcname.at(-1)!);
      if (!neutral) found.why = `calls ${funcname.join('.')}`;
      else found.neutralCalls.push(`${funcname.at(-1)!}/${((v.args as unknown[] | undefined) ?? []).length}`);
    }
    scan(value, found);
  }
}

function isTemporary(rel: Node | undefined): boolean {
  const rv = (rel?.RangeVar as Node | undefined) ?? rel;
  return rv?.relpersistence === 't' || rv?.schemaname === 'pg_temp';
}

/** SET / RESET (https://www.postgresql.org/docs/current/sql-set.html, sql-reset.html). */
function setEffect(body: Node): Effect {
  const kind = body.kind as string;
  // SET LOCAL never outlives its transaction, and the cache is not used inside one.
  if (body.is_local === true) return NONE;
  if (kind === 'VAR_RESET_ALL') return { kind: 'reset-all' };
  if (kind === 'VAR_SET_MULTI') return body.name === 'TRANSACTION' || body.name === 'TRANSACTION SNAPSHOT' ? NONE : sessionCharacteristics(body);
  const raw = String(body.name ?? '').toLowerCase();
  const name = SETTING_ALIASES[raw] ?? raw;
  if (kind === 'VAR_SET_VALUE') return { kind: 'set', name, value: canonical(body.args) };
  if (kind === 'VAR_SET_DEFAULT' || kind === 'VAR_RESET') return { kind: 'set', name, value: undefined };
  return taint(`SET ${kind}`);
}

/**
 * SET SESSION CHARACTERISTICS AS TRANSACTION <one mode> (pgjdbc's setTransactionIsolation) is a SET
 * of default_transaction_<mode>; several modes at once taint.
 */
function sessionCharacteristics(body: Node): Effect {
  const modes = (body.args as Node[] | undefined) ?? [];
  const mode = modes.length === 1 ? (modes[0]!.DefElem as Node | undefined) : undefined;
  const name = String(mode?.defname ?? '');
  if (body.name !== 'SESSION CHARACTERISTICS' || !['transaction_isolation', 'transaction_read_only', 'transaction_deferrable'].includes(name))
    return taint(`SET ${String(body.name)}`);
  return { kind: 'set', name: `default_${name}`, value: canonical([mode!.arg]) };
}

/** A SET's value as the parser read it, without source positions (so `=` and `TO`, spacing and case of keywords agree). */
function canonical(args: unknown): string {
  return JSON.stringify(args ?? [], (k, v: unknown) => (k === 'location' ? undefined : v));
}

function transactionEffect(body: Node): Effect {
  const chain = body.chain === true;
  switch (body.kind) {
    case 'TRANS_STMT_BEGIN':
    case 'TRANS_STMT_START':
      return { kind: 'begin' };
    case 'TRANS_STMT_COMMIT':
      return { kind: 'commit', chain };
    case 'TRANS_STMT_ROLLBACK':
      return { kind: 'rollback', chain };
    case 'TRANS_STMT_ROLLBACK_TO':
      return { kind: 'rollback-to' };
    case 'TRANS_STMT_PREPARE':
      return { kind: 'prepare-transaction' };
    default:
      // SAVEPOINT, RELEASE, COMMIT/ROLLBACK PREPARED.
      return NONE;
  }
}
