/**
 * What completed statements do to the session (SET, RESET, DISCARD ALL, transactions, DEALLOCATE,
 * and what taints it), applied to `Session` from what the server confirmed: a request's effects
 * count only once it succeeded, and a session-level SET inside a transaction block only once that
 * block committed (https://www.postgresql.org/docs/current/sql-set.html).
 *
 * Default deny: a statement is read from its own parse tree, and any kind of statement, call or
 * setting this module does not know to be harmless taints the session (no cache use until a
 * successful DISCARD ALL or a new connection).
 */
import { parseSync } from 'libpg-query';
import { LRUCache } from 'lru-cache';
import type { Session, SettingChange } from './session.js';

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

type Node = Record<string, unknown>;

const NONE: Effect = { kind: 'none' };
const taint = (why: string): Effect => ({ kind: 'taint', why });

/**
 * Statement kinds that cannot change what later statements of the session read (besides the
 * functions they call, checked on their own). Anything not listed taints.
 */
const HARMLESS_STATEMENTS = new Set([
  'InsertStmt',
  'UpdateStmt',
  'DeleteStmt',
  'MergeStmt',
  'SelectStmt',
  'CopyStmt',
  'TruncateStmt',
  'VariableShowStmt',
  'CreateStmt',
  'CreateTableAsStmt',
  'ViewStmt',
  'CreateSeqStmt',
  'AlterSeqStmt',
  'AlterTableStmt',
  'IndexStmt',
  'DropStmt',
  'RenameStmt',
  'CommentStmt',
  'CreateSchemaStmt',
  'CreateFunctionStmt',
  'AlterFunctionStmt',
  'CreateTrigStmt',
  'RuleStmt',
  'CreatePolicyStmt',
  'AlterPolicyStmt',
  'CreateEnumStmt',
  'AlterEnumStmt',
  'CompositeTypeStmt',
  'CreateDomainStmt',
  'AlterDomainStmt',
  'DefineStmt',
  'AlterOwnerStmt',
  'AlterObjectSchemaStmt',
  'RefreshMatViewStmt',
  'GrantStmt',
  'GrantRoleStmt',
  'CreateRoleStmt',
  'AlterRoleStmt',
  'DropRoleStmt',
  'AlterDefaultPrivilegesStmt',
  'ReassignOwnedStmt',
  'DropOwnedStmt',
  'VacuumStmt',
  'ClusterStmt',
  'ReindexStmt',
  'LockStmt',
  'ListenStmt',
  'UnlistenStmt',
  'NotifyStmt',
  'CheckPointStmt',
  'PrepareStmt',
  'DeclareCursorStmt',
  'FetchStmt',
  'ClosePortalStmt',
  'ConstraintsSetStmt',
  'ExplainStmt',
]);

/**
 * Built-in functions known not to change session state (they may well be volatile: that is the
 * planner's concern, not this one). Called unqualified or as pg_catalog.*. An allow list: a call
 * of anything else (a user function may call set_config) taints the session.
 */
const SESSION_NEUTRAL_FUNCTIONS = new Set(
  `now clock_timestamp statement_timestamp transaction_timestamp timeofday random gen_random_uuid
  nextval currval lastval setval count sum avg min max array_agg string_agg json_agg jsonb_agg json_object_agg jsonb_object_agg
  bool_and bool_or every row_number rank dense_rank percent_rank cume_dist ntile lag lead first_value last_value nth_value
  json_build_object jsonb_build_object json_build_array jsonb_build_array to_json to_jsonb row_to_json array_to_json
  jsonb_set jsonb_insert jsonb_array_elements json_array_elements jsonb_array_elements_text json_array_elements_text
  jsonb_each json_each jsonb_each_text json_each_text jsonb_typeof json_typeof jsonb_array_length json_array_length
  jsonb_strip_nulls jsonb_pretty jsonb_object_keys json_object_keys
  lower upper length char_length octet_length substring substr trim btrim ltrim rtrim replace concat concat_ws format
  left right position strpos split_part regexp_replace regexp_matches regexp_match regexp_split_to_array lpad rpad
  repeat reverse initcap md5 sha256 encode decode quote_ident quote_literal quote_nullable starts_with translate
  abs round ceil ceiling floor trunc mod power sqrt exp ln log sign div
  date_trunc date_part extract to_char to_date to_timestamp to_number age make_date make_time make_timestamp
  make_timestamptz make_interval justify_days justify_hours justify_interval timezone isfinite overlaps date_bin
  generate_series unnest array_length array_position array_positions array_remove array_append array_prepend
  array_cat cardinality array_to_string string_to_array array_upper array_lower
  pg_sleep pg_advisory_lock pg_advisory_unlock pg_advisory_xact_lock pg_try_advisory_lock pg_try_advisory_xact_lock
  pg_advisory_lock_shared pg_advisory_unlock_shared pg_advisory_unlock_all pg_notify pg_backend_pid
  current_setting current_database current_schema current_schemas version txid_current pg_current_xact_id
  pg_collation_for num_nulls num_nonnulls date uuid_generate_v1 uuid_generate_v1mc uuid_generate_v4
  to_tsvector to_tsquery plainto_tsquery phraseto_tsquery websearch_to_tsquery ts_rank ts_rank_cd ts_headline
  json_extract_path json_extract_path_text jsonb_extract_path jsonb_extract_path_text jsonb_path_query jsonb_path_exists
  format_type pg_get_expr col_description obj_description shobj_description pg_get_indexdef pg_get_constraintdef
  pg_get_viewdef pg_get_triggerdef pg_get_functiondef pg_get_function_arguments pg_get_function_result
  pg_get_function_identity_arguments pg_get_serial_sequence pg_get_userbyid pg_get_partkeydef pg_get_statisticsobjdef
  pg_get_ruledef pg_table_is_visible pg_type_is_visible pg_function_is_visible pg_encoding_to_char pg_typeof
  has_table_privilege has_schema_privilege has_column_privilege has_database_privilege has_sequence_privilege
  has_function_privilege pg_has_role to_regclass to_regtype to_regproc to_regnamespace pg_relation_size
  pg_total_relation_size pg_table_size pg_indexes_size pg_size_pretty pg_is_in_recovery pg_postmaster_start_time
  generate_subscripts array_dims pg_get_keywords inet_server_addr inet_server_port`.split(/\s+/),
);

/** Old spellings the server maps to current names (guc.c map_old_guc_names). */
const SETTING_ALIASES: Readonly<Record<string, string>> = { sort_mem: 'work_mem', vacuum_mem: 'maintenance_work_mem' };

const MEMO_SIZE = 10_000;
const memo = new LRUCache<string, readonly Effect[]>({ max: MEMO_SIZE });

/** The effects of a SQL text, one per statement; unparsable text changes nothing (the server refuses it too). */
export function sessionEffects(sql: string): readonly Effect[] {
  let effects = memo.get(sql);
  if (effects === undefined) {
    effects = analyze(sql);
    memo.set(sql, effects);
  }
  return effects;
}

function analyze(sql: string): readonly Effect[] {
  let stmts: { stmt?: Node }[];
  try {
    stmts = (parseSync(sql) as unknown as { stmts?: { stmt?: Node }[] }).stmts ?? [];
  } catch {
    // The server refuses it too (then it did nothing), or reads it otherwise than this parser (a
    // newer syntax, a replication command): then nothing is known of what it did.
    return [taint('a statement sidecache cannot parse')];
  }
  return stmts.map((s) => statementEffect(s.stmt ?? {}));
}

function statementEffect(stmt: Node): Effect {
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
      return analyzes ? statementEffect((body.query as Node | undefined) ?? {}) : NONE;
    }
  }
  if (!HARMLESS_STATEMENTS.has(type)) return taint(`${type || 'an unknown statement'} may change the session`);
  return treeProblem(body);
}

/** Temporary relations (they shadow permanent ones for this session alone), SELECT INTO, and calls not known to be session-neutral. */
function treeProblem(body: Node): Effect {
  const found = { why: undefined as string | undefined };
  scan(body, found);
  return found.why === undefined ? NONE : taint(found.why);
}

function scan(node: unknown, found: { why: string | undefined }): void {
  if (found.why !== undefined || node === null || typeof node !== 'object') return;
  if (Array.isArray(node)) {
    for (const item of node) scan(item, found);
    return;
  }
  for (const [key, value] of Object.entries(node as Node)) {
    const v = value as Node;
    if (key === 'intoClause') found.why = 'SELECT INTO';
    else if ((key === 'RangeVar' || key === 'rel' || key === 'relation') && isTemporary(v)) found.why = 'a temporary relation';
    else if (key === 'FuncCall') {
      const names = ((v.funcname as Node[] | undefined) ?? []).map((n) => (n.String as Node | undefined)?.sval as string);
      const neutral = (names.length === 1 || (names.length === 2 && names[0] === 'pg_catalog')) && SESSION_NEUTRAL_FUNCTIONS.has(names.at(-1)!);
      if (!neutral) found.why = `calls ${names.join('.')}`;
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

/** How one request that went upstream ended. */
export interface RequestOutcome {
  /** SQL texts it executed, in order. */
  executed: readonly string[];
  /** It ran something sidecache could not see (a FunctionCall, an Execute of an unknown portal). */
  unknown: boolean;
  /** The server answered an ErrorResponse. */
  errored: boolean;
  /** ReadyForQuery status before and after the request. */
  before: number;
  after: number;
}

/** Per listener, how many times role or database defaults were changed through it. */
const epochs = new WeakMap<object, number>();

/**
 * The epoch of role and database defaults (ALTER ROLE/DATABASE … SET) for a session beginning now:
 * sessions that began before such a change run with the old defaults, later ones with the new,
 * so the two never share keys.
 */
export function defaultsEpoch(listener: object): number {
  return epochs.get(listener) ?? 0;
}

/**
 * Applies one finished request to the session. `cached(sql)` says whether the planner vouched
 * for a SQL text as cacheable: such a text changes nothing in the session and is not parsed again.
 */
export function applySessionEffects(session: Session, outcome: RequestOutcome, cached: (sql: string) => boolean, listener: object): void {
  const effects: Effect[] = [];
  if (outcome.unknown) effects.push(taint('a FunctionCall, or an Execute of a portal sidecache does not know'));
  for (const sql of outcome.executed) {
    // A statement the planner vouched for is one plain SELECT whose calls are all IMMUTABLE (or
    // allowed by the operator), without INTO or temporary relations: not parsed again. It still
    // counts as a statement of the request (which one failed is not known when several ran).
    if (cached(sql)) {
      effects.push(NONE);
      continue;
    }
    for (const e of sessionEffects(sql)) {
      if (e.kind === 'defaults') epochs.set(listener, defaultsEpoch(listener) + 1);
      effects.push(e);
    }
  }
  session.endRequest(effects, outcome.errored, outcome.before, outcome.after);
}
