/**
 * The rules per statement kind: which statements may be cached (plain SELECTs), which write what,
 * which may change a whole database or the whole server, and which change the session.
 */
import { type Classification, notCacheable, type RelationRef, SYSTEM_SCHEMAS } from './classification.js';
import { callsOf, newFacts, walk } from './classify-walk.js';
import { isTemp, type Node, relationOf } from './parse-tree.js';

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

export function classifyStatement(stmt: Node): Classification {
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
    case 'DropdbStmt':
      // Roles, databases: every database of the server.
      return notCacheable('DropdbStmt may change any result', { cluster: true, dropsDatabase: String(body.dbname ?? '') });
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

function dataModifyingCtes(stmt: Node): RelationRef[] {
  const ctes = ((stmt.withClause as Node | undefined)?.ctes as Node[] | undefined) ?? [];
  return ctes.flatMap((c) => {
    const query = (c.CommonTableExpr as Node | undefined)?.ctequery as Node | undefined;
    if (query === undefined || 'SelectStmt' in query) return [];
    return classifyStatement(query).writes.concat(relationOf((Object.values(query)[0] as Node).relation));
  });
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
