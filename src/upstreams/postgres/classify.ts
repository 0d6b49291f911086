/**
 * What a SQL text does, from the real PostgreSQL parser (libpg-query): whether it may be cached,
 * which relations it reads and writes, which functions it calls, and how it changes the session.
 * Pure: catalog look-ups (views, partitions, function volatility) happen in catalog.ts on the result.
 */
import { loadModule, parseSync } from 'libpg-query';

/** A relation as written in the statement: lower-cased by the parser unless quoted. */
export interface RelationRef {
  schema: string | undefined;
  name: string;
}

/** How running the statement changes what later statements of the session return. */
export type SessionEffect = 'none' | 'set' | 'reset' | 'taint';

export interface Classification {
  /** A single read-only SELECT with nothing volatile; still subject to catalog checks. */
  cacheable: boolean;
  /** Why not, when not (also shown by /cache/explain). */
  reason: string | undefined;
  reads: RelationRef[];
  /** Every call (`[schema.]name/argument count`), built-ins included: the database's catalog (or the allow list) must vouch that each is IMMUTABLE. */
  functions: string[];
  /** Relations the statement writes or alters. */
  writes: RelationRef[];
  /** The statement may change anything of the database (roles, grants, policies, unknown DDL). */
  invalidatesAll: boolean;
  session: SessionEffect;
  /** Starts, ends or otherwise touches a transaction block (BEGIN, COMMIT, …). */
  transaction: boolean;
}

type Node = Record<string, unknown>;

/** libpg-query is WebAssembly: load it once before the first classification. */
export function loadParser(): Promise<void> {
  return loadModule();
}

const TIME_WORDS = new Set(['now', 'today', 'tomorrow', 'yesterday']);
const TIME_SVF = /^SVFOP_(CURRENT_DATE|CURRENT_TIME|LOCALTIME)/;
/** Schemas of the system catalog: reads of them are never cached (the catalog rejects them too, for names resolved there). */
export const SYSTEM_SCHEMAS: ReadonlySet<string> = new Set(['pg_catalog', 'information_schema', 'pg_toast']);
/** Statements that read nothing cacheable and change no data. */
const HARMLESS = new Set([
  'TransactionStmt',
  'VariableShowStmt',
  'ExplainStmt',
  'ListenStmt',
  'UnlistenStmt',
  'NotifyStmt',
  'PrepareStmt',
  'DeallocateStmt',
  'DeclareCursorStmt',
  'FetchStmt',
  'ClosePortalStmt',
  'LockStmt',
  'CheckPointStmt',
  'VacuumStmt',
  'LoadStmt',
  'ConstraintsSetStmt',
]);
const ALL_DATA = new Set([
  'AlterRoleStmt',
  'AlterRoleSetStmt',
  'GrantStmt',
  'GrantRoleStmt',
  'CreatePolicyStmt',
  'AlterPolicyStmt',
  'DoStmt',
  'CallStmt',
  'ExecuteStmt',
  'AlterDefaultPrivilegesStmt',
  'ReassignOwnedStmt',
  'DropOwnedStmt',
]);

function notCacheable(reason: string, extra: Partial<Classification> = {}): Classification {
  return { cacheable: false, reason, reads: [], functions: [], writes: [], invalidatesAll: false, session: 'none', transaction: false, ...extra };
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
    session: combineSession(parts.map((p) => p.session)),
    transaction: parts.some((p) => p.transaction),
  };
}

function combineSession(effects: SessionEffect[]): SessionEffect {
  if (effects.includes('taint')) return 'taint';
  const last = effects.filter((e) => e !== 'none').at(-1);
  return effects.includes('set') ? 'set' : (last ?? 'none');
}

function classifyStatement(stmt: Node): Classification {
  const [type, body] = (Object.entries(stmt)[0] ?? ['', {}]) as [string, Node];
  switch (type) {
    case 'SelectStmt':
      return classifySelect(body);
    case 'InsertStmt':
    case 'UpdateStmt':
    case 'DeleteStmt':
    case 'MergeStmt':
      return notCacheable('writes', { writes: [...relationOf(body.relation), ...dataModifyingCtes(body)], session: callsSetConfig(body) ? 'taint' : 'none' });
    case 'TruncateStmt':
      return notCacheable('writes', { writes: ((body.relations as Node[]) ?? []).flatMap((r) => relationOf(r)) });
    case 'CopyStmt':
      return notCacheable('COPY', { writes: body.is_from ? relationOf(body.relation) : [] });
    case 'VariableSetStmt':
      return notCacheable('sets a session variable', { session: body.kind === 'VAR_RESET_ALL' ? 'reset' : 'set' });
    case 'DiscardStmt':
      return notCacheable('DISCARD', { session: body.target === 'DISCARD_ALL' ? 'reset' : 'none' });
    case 'TransactionStmt':
      return notCacheable('transaction control', { transaction: true });
    case 'CreateStmt':
      return notCacheable('DDL', { writes: relationOf(body.relation), session: isTemp(body.relation) ? 'taint' : 'none' });
    case 'CreateTableAsStmt':
      return notCacheable('DDL', { session: isTemp((body.into as Node | undefined)?.rel) ? 'taint' : 'none' });
    case 'AlterTableStmt':
    case 'IndexStmt':
    case 'RefreshMatViewStmt':
    case 'RuleStmt':
    case 'CreateTrigStmt':
    case 'RenameStmt':
    case 'ViewStmt':
      return notCacheable('DDL', { writes: relationOf(body.relation ?? body.view) });
    case 'DropStmt':
      return notCacheable('DDL', { writes: droppedRelations(body), invalidatesAll: !isRelationDrop(body) });
    default:
      if (HARMLESS.has(type)) return notCacheable(`${type} is not a SELECT`);
      if (ALL_DATA.has(type)) return notCacheable(`${type} may change any result`, { invalidatesAll: true });
      return notCacheable(`${type} is not a SELECT`, { invalidatesAll: true });
  }
}

/** https://www.postgresql.org/docs/current/sql-select.html: only plain reads qualify. */
function classifySelect(select: Node): Classification {
  const facts = { reads: [] as RelationRef[], functions: [] as string[], ctes: new Set<string>(), problem: undefined as string | undefined, setConfig: false };
  walk(select, facts);
  const writes = dataModifyingCtes(select);
  if (writes.length > 0) return notCacheable('data-modifying WITH', { writes });
  if (facts.setConfig) return notCacheable('calls set_config', { session: 'taint' });
  if (facts.problem !== undefined) return notCacheable(facts.problem);
  const reads = facts.reads.filter((r) => r.schema !== undefined || !facts.ctes.has(r.name));
  const system = reads.find((r) => r.schema !== undefined && SYSTEM_SCHEMAS.has(r.schema));
  if (system !== undefined) return notCacheable(`reads the system catalog (${system.schema}.${system.name})`);
  return {
    cacheable: true,
    reason: undefined,
    reads,
    functions: [...new Set(facts.functions)],
    writes: [],
    invalidatesAll: false,
    session: 'none',
    transaction: false,
  };
}

interface Facts {
  reads: RelationRef[];
  functions: string[];
  ctes: Set<string>;
  problem: string | undefined;
  setConfig: boolean;
}

/** Walks the parse tree once, collecting relations and functions and the first disqualifier. */
function walk(node: unknown, facts: Facts): void {
  if (Array.isArray(node)) {
    for (const item of node) walk(item, facts);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  for (const [key, value] of Object.entries(node as Node)) {
    const v = value as Node;
    switch (key) {
      case 'RangeVar':
        if (v.relpersistence === 't') facts.problem ??= 'reads a temporary relation';
        facts.reads.push({ schema: v.schemaname as string | undefined, name: v.relname as string });
        break;
      case 'FuncCall': {
        const names = ((v.funcname as Node[]) ?? []).map((n) => (n.String as Node | undefined)?.sval as string);
        if (names.at(-1) === 'set_config') facts.setConfig = true;
        facts.functions.push(`${names.join('.')}/${(v.args as unknown[] | undefined)?.length ?? 0}`);
        break;
      }
      case 'SQLValueFunction':
        if (TIME_SVF.test(String(v.op))) facts.problem ??= 'reads the current time';
        break;
      case 'A_Const':
        if (
          TIME_WORDS.has(
            String((v.sval as Node | undefined)?.sval ?? '')
              .trim()
              .toLowerCase(),
          )
        )
          facts.problem ??= 'reads the current time';
        break;
      case 'lockingClause':
        facts.problem ??= 'has a locking clause';
        break;
      case 'intoClause':
        facts.problem ??= 'is SELECT INTO';
        break;
      case 'RangeTableSample':
        facts.problem ??= 'uses TABLESAMPLE';
        break;
      case 'CommonTableExpr':
        facts.ctes.add(v.ctename as string);
        break;
    }
    walk(value, facts);
  }
}

function dataModifyingCtes(stmt: Node): RelationRef[] {
  const ctes = ((stmt.withClause as Node | undefined)?.ctes as Node[] | undefined) ?? [];
  return ctes.flatMap((c) => {
    const query = (c.CommonTableExpr as Node | undefined)?.ctequery as Node | undefined;
    if (query === undefined || 'SelectStmt' in query) return [];
    return classifyStatement(query).writes.concat(relationOf((Object.values(query)[0] as Node).relation));
  });
}

function callsSetConfig(body: Node): boolean {
  const facts: Facts = { reads: [], functions: [], ctes: new Set(), problem: undefined, setConfig: false };
  walk(body, facts);
  return facts.setConfig;
}

function relationOf(node: unknown): RelationRef[] {
  const rv = (node as Node | undefined)?.RangeVar as Node | undefined;
  const target = rv ?? (node as Node | undefined);
  if (target === undefined || typeof target.relname !== 'string') return [];
  return [{ schema: target.schemaname as string | undefined, name: target.relname }];
}

function isTemp(node: unknown): boolean {
  const rv = ((node as Node | undefined)?.RangeVar as Node | undefined) ?? (node as Node | undefined);
  return rv?.relpersistence === 't';
}

const RELATION_DROPS = new Set(['OBJECT_TABLE', 'OBJECT_VIEW', 'OBJECT_MATVIEW', 'OBJECT_INDEX', 'OBJECT_FOREIGN_TABLE', 'OBJECT_SEQUENCE']);

function isRelationDrop(body: Node): boolean {
  return RELATION_DROPS.has(String(body.removeType));
}

/** DROP TABLE a, s.b: each object is a list of name parts. */
function droppedRelations(body: Node): RelationRef[] {
  if (!isRelationDrop(body)) return [];
  return ((body.objects as Node[]) ?? []).map((o) => {
    const parts = (((o.List as Node | undefined)?.items as Node[]) ?? []).map((p) => (p.String as Node).sval as string);
    return { schema: parts.length > 1 ? parts.at(-2) : undefined, name: parts.at(-1) ?? '' };
  });
}
