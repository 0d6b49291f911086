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
  /**
   * The name is also a CTE's: which one a reference means depends on where it stands (a CTE is
   * visible only in its WITH's scope), so it counts as the relation too when one of that name exists.
   */
  maybeCte?: boolean;
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
  /** Every operator named (`[schema.]op`): the catalog must vouch that no user operator of that name is anything but IMMUTABLE. */
  operators: string[];
  /** Types constants and expressions are cast to (last name part): the catalog must vouch that their input and casts are IMMUTABLE. */
  types: string[];
  /** Names read as `x.name` or `(x).name`: a column, or a call `name(x)` (attribute notation) when no relation read has such a column. */
  attributes: string[];
  /** Relations the statement writes or alters. */
  writes: RelationRef[];
  /** The statement may change anything of the database (grants, policies, functions, renames, …). */
  invalidatesAll: boolean;
  /** The statement may change results in every database of the server (roles, databases, code that can do either, unknown statements); implies `invalidatesAll`. */
  cluster: boolean;
  /** TRUNCATE … CASCADE: the write reaches every table that references a written one, whatever its foreign key's actions. */
  cascade: boolean;
  session: SessionEffect;
  /** Starts, ends or otherwise touches a transaction block (BEGIN, COMMIT, …). */
  transaction: boolean;
  /** Ends a transaction even when the session stays in a block (COMMIT AND CHAIN, ROLLBACK AND CHAIN, PREPARE TRANSACTION). */
  commits: boolean;
}

type Node = Record<string, unknown>;

/** libpg-query is WebAssembly: load it once before the first classification. */
export function loadParser(): Promise<void> {
  return loadModule();
}

/** A string constant with one of these words may be read as the current time by any date/time type (arrays and ranges included). */
const TIME_WORD = /\b(now|today|tomorrow|yesterday)\b/i;
const TIME_SVF = /^SVFOP_(CURRENT_DATE|CURRENT_TIME|LOCALTIME)/;
/** Types a constant may be cast to without being read as a time. */
const TEXT_TYPES = new Set(['text', 'varchar', 'bpchar', 'char', 'name', 'citext', 'json', 'jsonb', 'bytea']);
/** Types whose input reads the catalog (a name's OID changes with DDL): https://www.postgresql.org/docs/current/datatype-oid.html */
const CATALOG_TYPES = new Set([
  'regclass',
  'regcollation',
  'regconfig',
  'regdictionary',
  'regnamespace',
  'regoper',
  'regoperator',
  'regproc',
  'regprocedure',
  'regrole',
  'regtype',
  'aclitem',
]);
/**
 * Parse-tree nodes of a SELECT whose meaning sidecache checks. Any other node (XML, JSON
 * functions, table functions, anything a newer parser adds) keeps the statement from the cache.
 */
const KNOWN_NODES = new Set([
  'SelectStmt',
  'ResTarget',
  'ColumnRef',
  'A_Star',
  'A_Const',
  'String',
  'Integer',
  'Float',
  'Boolean',
  'BitString',
  'ParamRef',
  'A_Expr',
  'BoolExpr',
  'NullTest',
  'BooleanTest',
  'FuncCall',
  'WindowDef',
  'SortBy',
  'TypeCast',
  'TypeName',
  'CollateClause',
  'SubLink',
  'RangeVar',
  'RangeSubselect',
  'RangeFunction',
  'JoinExpr',
  'Alias',
  'CommonTableExpr',
  'WithClause',
  'CTESearchClause',
  'CTECycleClause',
  'A_Indirection',
  'A_Indices',
  'A_ArrayExpr',
  'CaseExpr',
  'CaseWhen',
  'CoalesceExpr',
  'MinMaxExpr',
  'RowExpr',
  'SQLValueFunction',
  'GroupingSet',
  'GroupingFunc',
  'NamedArgExpr',
  'ColumnDef',
  'List',
  'IntoClause',
  'LockingClause',
  'RangeTableSample',
]);
/** Schemas of the system catalog: reads of them are never cached (the catalog rejects them too, for names resolved there). */
export const SYSTEM_SCHEMAS: ReadonlySet<string> = new Set(['pg_catalog', 'information_schema', 'pg_toast']);
/** Statements that read nothing cacheable and change no data. */
const HARMLESS = new Set([
  'TransactionStmt',
  'VariableShowStmt',
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
  'ReindexStmt',
  'ClusterStmt',
]);
/** Statements whose effect stays in the database they run in, but may change any result there. */
const DATABASE_WIDE = new Set([
  'GrantStmt',
  'CreatePolicyStmt',
  'AlterPolicyStmt',
  'AlterDefaultPrivilegesStmt',
  'ReassignOwnedStmt',
  'DropOwnedStmt',
  'CreateFunctionStmt',
  'AlterFunctionStmt',
  'CreateSchemaStmt',
  'CommentStmt',
  'CreateExtensionStmt',
  'AlterExtensionStmt',
  'AlterExtensionContentsStmt',
  'CreateSeqStmt',
  'AlterSeqStmt',
  'CompositeTypeStmt',
  'CreateEnumStmt',
  'AlterEnumStmt',
  'CreateRangeStmt',
  'CreateDomainStmt',
  'AlterDomainStmt',
  'DefineStmt',
  'CreateCastStmt',
  'AlterObjectSchemaStmt',
  'AlterOwnerStmt',
  'AlterOperatorStmt',
  'AlterTypeStmt',
  'CreateStatsStmt',
  'AlterStatsStmt',
  'CreateForeignTableStmt',
  'CreateOpClassStmt',
  'CreateOpFamilyStmt',
  'AlterOpFamilyStmt',
  'CreateConversionStmt',
  'CreateTransformStmt',
  'CreateEventTrigStmt',
  'AlterEventTrigStmt',
  'AlterCollationStmt',
  'AlterTSDictionaryStmt',
  'AlterTSConfigurationStmt',
  'AlterTableMoveAllStmt',
  'CreateTableAsStmt',
  'SecLabelStmt',
]);
/** Roles and databases belong to the whole server; DO, CALL and EXECUTE may run any of these. Unknown statements count here too. */
const CLUSTER_OBJECTS = new Set(['OBJECT_ROLE', 'OBJECT_DATABASE', 'OBJECT_TABLESPACE']);

function notCacheable(reason: string, extra: Partial<Classification> = {}): Classification {
  const c: Classification = {
    cacheable: false,
    reason,
    reads: [],
    functions: [],
    operators: [],
    types: [],
    attributes: [],
    writes: [],
    invalidatesAll: false,
    cluster: false,
    cascade: false,
    session: 'none',
    transaction: false,
    commits: false,
    ...extra,
  };
  if (c.cluster) c.invalidatesAll = true;
  return c;
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

function classifyStatement(stmt: Node): Classification {
  const [type, body] = (Object.entries(stmt)[0] ?? ['', {}]) as [string, Node];
  switch (type) {
    case 'SelectStmt':
      return classifySelect(body);
    case 'InsertStmt':
    case 'UpdateStmt':
    case 'DeleteStmt':
    case 'MergeStmt': {
      const facts = newFacts();
      walk(body, facts);
      return notCacheable('writes', {
        ...callsOf(facts),
        writes: [...relationOf(body.relation), ...dataModifyingCtes(body)],
        session: facts.setConfig ? 'taint' : 'none',
      });
    }
    case 'TruncateStmt':
      return notCacheable('writes', { writes: ((body.relations as Node[]) ?? []).flatMap((r) => relationOf(r)), cascade: body.behavior === 'DROP_CASCADE' });
    case 'CopyStmt':
      return notCacheable('COPY', { writes: body.is_from ? relationOf(body.relation) : [] });
    case 'ExplainStmt':
      return classifyExplain(body);
    case 'VariableSetStmt':
      return notCacheable('sets a session variable', { session: body.kind === 'VAR_RESET_ALL' ? 'reset' : 'set' });
    case 'DiscardStmt':
      return notCacheable('DISCARD', { session: body.target === 'DISCARD_ALL' ? 'reset' : 'none' });
    case 'TransactionStmt':
      return classifyTransaction(body);
    case 'CreateStmt':
      return notCacheable('DDL', { writes: relationOf(body.relation), session: isTemp(body.relation) ? 'taint' : 'none' });
    case 'CreateTableAsStmt':
      // The new name may shadow another relation on some search_path: everything of the database.
      return notCacheable('DDL', { invalidatesAll: true, session: isTemp((body.into as Node | undefined)?.rel) ? 'taint' : 'none' });
    case 'RenameStmt':
      // The new name may shadow another (and the old one may come back as another table).
      return notCacheable('DDL', { writes: relationOf(body.relation), invalidatesAll: true, cluster: CLUSTER_OBJECTS.has(String(body.renameType)) });
    case 'AlterTableStmt':
    case 'IndexStmt':
    case 'RefreshMatViewStmt':
    case 'RuleStmt':
    case 'CreateTrigStmt':
    case 'ViewStmt':
      return notCacheable('DDL', { writes: relationOf(body.relation ?? body.view) });
    case 'DropStmt':
      return notCacheable('DDL', {
        writes: droppedRelations(body),
        invalidatesAll: !isRelationDrop(body),
        cluster: CLUSTER_OBJECTS.has(String(body.removeType)),
        cascade: body.behavior === 'DROP_CASCADE',
      });
    default:
      if (HARMLESS.has(type)) return notCacheable(`${type} is not a SELECT`);
      if (DATABASE_WIDE.has(type)) return notCacheable(`${type} may change any result`, { invalidatesAll: true });
      // Roles, databases, DO/CALL/EXECUTE and statements sidecache does not know: every database of the server.
      return notCacheable(`${type} may change any result`, { cluster: true });
  }
}

/** EXPLAIN of a write may run it (ANALYZE): it counts as the write, whatever its options. */
function classifyExplain(body: Node): Classification {
  const inner = classifyStatement((body.query as Node | undefined) ?? {});
  if (inner.writes.length === 0 && !inner.invalidatesAll && inner.session === 'none') {
    // Its calls stay listed: EXPLAIN ANALYZE runs them, and a function may write.
    return notCacheable('ExplainStmt is not a SELECT', {
      functions: inner.functions,
      operators: inner.operators,
      types: inner.types,
      attributes: inner.attributes,
    });
  }
  return { ...inner, cacheable: false, reason: `EXPLAIN of a statement that ${inner.reason ?? 'writes'}` };
}

/** https://www.postgresql.org/docs/current/sql-commit.html: AND CHAIN commits and opens the next transaction at once. */
function classifyTransaction(body: Node): Classification {
  const kind = String(body.kind);
  const ends = ['TRANS_STMT_COMMIT', 'TRANS_STMT_ROLLBACK', 'TRANS_STMT_PREPARE'].includes(kind);
  // COMMIT PREPARED makes visible what another session wrote: sidecache does not know what.
  const prepared = kind === 'TRANS_STMT_COMMIT_PREPARED' || kind === 'TRANS_STMT_ROLLBACK_PREPARED';
  return notCacheable('transaction control', { transaction: true, commits: ends, invalidatesAll: prepared });
}

/** https://www.postgresql.org/docs/current/sql-select.html: only plain reads qualify. */
function classifySelect(select: Node): Classification {
  const facts = newFacts();
  walk(select, facts);
  const writes = dataModifyingCtes(select);
  if (writes.length > 0) return notCacheable('data-modifying WITH', { writes });
  if (facts.setConfig) return notCacheable('calls set_config', { ...callsOf(facts), session: 'taint' });
  if (facts.problem !== undefined) return notCacheable(facts.problem, callsOf(facts));
  const reads = facts.reads.map((r) => (r.schema === undefined && facts.ctes.has(r.name) ? { ...r, maybeCte: true } : r));
  const system = reads.find((r) => r.schema !== undefined && SYSTEM_SCHEMAS.has(r.schema));
  if (system !== undefined) return notCacheable(`reads the system catalog (${system.schema}.${system.name})`);
  return {
    ...notCacheable(''),
    cacheable: true,
    reason: undefined,
    reads,
    ...callsOf(facts),
  };
}

/** What a statement runs besides reading: calls, operators, attribute names (a function it runs may write). */
function callsOf(facts: Facts): Pick<Classification, 'functions' | 'operators' | 'types' | 'attributes'> {
  return {
    functions: [...new Set(facts.functions)],
    operators: [...new Set(facts.operators)],
    types: [...new Set(facts.types)],
    attributes: [...new Set(facts.attributes)],
  };
}

interface Facts {
  reads: RelationRef[];
  functions: string[];
  operators: string[];
  types: string[];
  attributes: string[];
  ctes: Set<string>;
  problem: string | undefined;
  setConfig: boolean;
}

function newFacts(): Facts {
  return { reads: [], functions: [], operators: [], types: [], attributes: [], ctes: new Set(), problem: undefined, setConfig: false };
}

const names = (list: unknown): string[] =>
  ((list as Node[] | undefined) ?? []).flatMap((n) => ((n.String as Node | undefined)?.sval as string | undefined) ?? []);

/** Walks the parse tree once, collecting relations, calls, operators and attribute names, and the first disqualifier. */
function walk(node: unknown, facts: Facts): void {
  if (Array.isArray(node)) {
    for (const item of node) walk(item, facts);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  for (const [key, value] of Object.entries(node as Node)) {
    const v = value as Node;
    if (/^[A-Z]/.test(key) && !KNOWN_NODES.has(key)) facts.problem ??= `uses ${key}, which sidecache does not check`;
    if (!noteNode(key, v, facts)) continue;
    walk(value, facts);
  }
}

/** Records what one node means; false when its children need no walk. */
function noteNode(key: string, v: Node, facts: Facts): boolean {
  switch (key) {
    case 'RangeVar':
      if (v.relpersistence === 't') facts.problem ??= 'reads a temporary relation';
      facts.reads.push({ schema: v.schemaname as string | undefined, name: v.relname as string });
      return true;
    case 'FuncCall': {
      const fn = names(v.funcname);
      if (fn.at(-1) === 'set_config') facts.setConfig = true;
      facts.functions.push(`${fn.join('.')}/${(v.args as unknown[] | undefined)?.length ?? 0}`);
      return true;
    }
    case 'A_Expr':
      facts.operators.push(...operatorsOf(v));
      return true;
    case 'SubLink':
      if (v.operName !== undefined) facts.operators.push(names(v.operName).join('.'));
      return true;
    case 'SortBy':
      if (v.useOp !== undefined) facts.operators.push(names(v.useOp).join('.'));
      return true;
    case 'ColumnRef': {
      const fields = names(v.fields);
      if (fields.length > 1) facts.attributes.push(fields.at(-1)!);
      return true;
    }
    case 'A_Indirection':
      facts.attributes.push(...names(v.indirection));
      return true;
    case 'TypeCast': {
      const type = names((v.typeName as Node | undefined)?.names).at(-1) ?? '';
      facts.types.push(type);
      if (CATALOG_TYPES.has(type)) facts.problem ??= `casts to ${type}, whose value depends on the catalog`;
      // A constant cast to a text type is only text, whatever words it holds ('now'::text::date is not).
      if (!isTextType(v.typeName) && TIME_WORD.test(innermostString(v))) facts.problem ??= 'reads the current time';
      return !(isTextType(v.typeName) && (v.arg as Node | undefined)?.A_Const !== undefined);
    }
    case 'SQLValueFunction':
      if (TIME_SVF.test(String(v.op))) facts.problem ??= 'reads the current time';
      return true;
    case 'A_Const':
      if (TIME_WORD.test(String((v.sval as Node | undefined)?.sval ?? ''))) facts.problem ??= 'reads the current time';
      return true;
    case 'lockingClause':
      facts.problem ??= 'has a locking clause';
      return true;
    case 'intoClause':
      facts.problem ??= 'is SELECT INTO';
      return true;
    case 'RangeTableSample':
      facts.problem ??= 'uses TABLESAMPLE';
      return true;
    case 'CommonTableExpr':
      facts.ctes.add(v.ctename as string);
      return true;
    default:
      return true;
  }
}

function isTextType(typeName: unknown): boolean {
  const t = typeName as Node | undefined;
  return t !== undefined && t.arrayBounds === undefined && TEXT_TYPES.has(names(t.names).at(-1) ?? '');
}

/** The string constant at the bottom of a chain of casts, or ''. */
function innermostString(cast: Node): string {
  let arg = cast.arg as Node | undefined;
  while (arg?.TypeCast !== undefined) arg = (arg.TypeCast as Node).arg as Node | undefined;
  return String(((arg?.A_Const as Node | undefined)?.sval as Node | undefined)?.sval ?? '');
}

/** The operators an expression runs: BETWEEN is two comparisons; the others name theirs. */
function operatorsOf(expr: Node): string[] {
  const kind = String(expr.kind);
  if (kind.startsWith('AEXPR_BETWEEN') || kind.startsWith('AEXPR_NOT_BETWEEN')) return ['>=', '<='];
  return [names(expr.name).join('.')];
}

function dataModifyingCtes(stmt: Node): RelationRef[] {
  const ctes = ((stmt.withClause as Node | undefined)?.ctes as Node[] | undefined) ?? [];
  return ctes.flatMap((c) => {
    const query = (c.CommonTableExpr as Node | undefined)?.ctequery as Node | undefined;
    if (query === undefined || 'SelectStmt' in query) return [];
    return classifyStatement(query).writes.concat(relationOf((Object.values(query)[0] as Node).relation));
  });
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
