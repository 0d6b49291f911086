/** The allow lists of session-effects.ts: statement kinds and built-in functions that cannot change the session. */

/**
 * Statement kinds that cannot change what later statements of the session read (besides the
 * functions they call, checked on their own). Anything not listed taints.
 */
export const HARMLESS_STATEMENTS = new Set([
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
export const SESSION_NEUTRAL_FUNCTIONS = new Set(
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
