/**
 * The walk over one statement's parse tree: collects the relations it reads, the functions,
 * operators, types and attribute names it uses, and the first thing that keeps it from the cache.
 */
import type { Classification, RelationRef } from './classification.js';
import { CATALOG_TYPES, castsConstant, innermostString, isClockType, isTextType, TIME_SVF, TIME_WORD } from './classify-literals.js';
import { type Node, names } from './parse-tree.js';

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
/** What a statement runs besides reading: calls, operators, attribute names (a function it runs may write). */
export function callsOf(facts: Facts): Pick<Classification, 'functions' | 'operators' | 'types' | 'attributes'> {
  return {
    functions: [...new Set(facts.functions)],
    operators: [...new Set(facts.operators)],
    types: [...new Set(facts.types)],
    attributes: [...new Set(facts.attributes)],
  };
}

export interface Facts {
  reads: RelationRef[];
  functions: string[];
  operators: string[];
  types: string[];
  attributes: string[];
  ctes: Set<string>;
  problem: string | undefined;
  setConfig: boolean;
}

export function newFacts(): Facts {
  return { reads: [], functions: [], operators: [], types: [], attributes: [], ctes: new Set(), problem: undefined, setConfig: false };
}

/** Walks the parse tree once, collecting relations, calls, operators and attribute names, and the first disqualifier. */
export function walk(node: unknown, facts: Facts): void {
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
      // Without types, a column or an expression may be text such as 'now' (a timestamptz column's ::date bypasses too).
      if (isClockType(v.typeName) && !castsConstant(v))
        facts.problem ??= "casts a computed value to a date/time type (text such as 'now' would read the clock)";
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

/** The operators an expression runs: BETWEEN is two comparisons; the others name theirs. */
function operatorsOf(expr: Node): string[] {
  const kind = String(expr.kind);
  if (kind.startsWith('AEXPR_BETWEEN') || kind.startsWith('AEXPR_NOT_BETWEEN')) return ['>=', '<='];
  return [names(expr.name).join('.')];
}
