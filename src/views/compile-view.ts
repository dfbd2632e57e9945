import type { FieldSpec } from '../config/index.js';
import { ConfigError } from '../errors.js';
import { DUCKDB_TYPES, quoteIdent } from '../util/duckdb.js';
import type { AstNode, SqlParser } from './sql-parser.js';

/** A view definition Strata cannot split into a partial aggregation and a merge; names the view and the construct. */
export class UnsupportedViewError extends ConfigError {
  override readonly name: string = 'UnsupportedViewError';
}

/** The measures a view may compute: each has a partial form and an exact merge (sketches for the approximate ones). */
export type MeasureKind = 'count' | 'sum' | 'min' | 'max' | 'avg' | 'approx_count_distinct' | 'approx_quantile';

/** A group-by column of a view: its output name and its SQL over the source's columns. */
export interface ViewKey {
  readonly name: string;
  readonly sql: string;
}

export interface ViewMeasure {
  readonly name: string;
  readonly kind: MeasureKind;
  /** The aggregated expression over the source's columns; null for count(*). */
  readonly argSql: string | null;
  /** For approx_quantile: the quantile, in (0, 1). */
  readonly quantile?: number;
}

/** A view, understood: what it reads, filters, groups by and measures. */
export interface ViewDefinition {
  readonly name: string;
  readonly sql: string;
  readonly source: string;
  readonly whereSql: string | null;
  readonly keys: readonly ViewKey[];
  readonly measures: readonly ViewMeasure[];
}

const MEASURE_FUNCTIONS: Record<string, MeasureKind> = {
  count_star: 'count',
  count: 'count',
  sum: 'sum',
  min: 'min',
  max: 'max',
  avg: 'avg',
  mean: 'avg',
  approx_count_distinct: 'approx_count_distinct',
  approx_quantile: 'approx_quantile',
};

/** What a node's class says it is, for the error messages. */
const CONSTRUCT_BY_MODIFIER: Record<string, string> = {
  ORDER_MODIFIER: 'ORDER BY',
  LIMIT_MODIFIER: 'LIMIT',
  LIMIT_PERCENT_MODIFIER: 'LIMIT',
  DISTINCT_MODIFIER: 'SELECT DISTINCT',
};

const CONSTRUCT_BY_FROM: Record<string, string> = {
  JOIN: 'a join',
  SUBQUERY: 'a subquery in FROM',
  TABLE_FUNCTION: 'a table function in FROM',
  EXPRESSION_LIST: 'a VALUES list in FROM',
  PIVOT: 'PIVOT',
  EMPTY: 'a SELECT without FROM',
};

/** Every child expression of a node, whatever the key it sits under. */
function* childrenOf(node: AstNode): Generator<AstNode> {
  for (const [key, value] of Object.entries(node)) {
    if (key === 'value' || key === 'cast_type' || key === 'type') continue;
    if (Array.isArray(value)) {
      for (const item of value) if (item !== null && typeof item === 'object') yield item as AstNode;
    } else if (value !== null && typeof value === 'object') yield value as AstNode;
  }
}

/** The first node under (and including) `node` that `match` accepts. */
function find(node: AstNode, match: (node: AstNode) => boolean): AstNode | null {
  if (match(node)) return node;
  for (const child of childrenOf(node)) {
    const found = find(child, match);
    if (found) return found;
  }
  return null;
}

const isWindow = (node: AstNode) => node.class === 'WINDOW';
const isSubquery = (node: AstNode) => node.class === 'SUBQUERY';

/**
 * Reads a view's SQL into a {@link ViewDefinition}, or throws {@link UnsupportedViewError} naming the view and
 * the first construct that cannot be decomposed into partial aggregates and a merge: joins, window functions,
 * ORDER BY or LIMIT, exact count(DISTINCT), aggregates without an exact merge, HAVING, and so on.
 *
 * `aggregates` is the set of every aggregate function name the engine knows, so that an unsupported one is
 * named as such rather than mistaken for a group key. `sources` are the streams and tables a view may read.
 */
export async function compileView(
  name: string,
  sql: string,
  sources: ReadonlyMap<string, readonly FieldSpec[]>,
  parser: SqlParser,
  aggregates: ReadonlySet<string>,
): Promise<ViewDefinition> {
  const refuse = (what: string): never => {
    throw new UnsupportedViewError(`view "${name}": ${what}`);
  };
  const parsed = await parser.parse(sql);
  if ('error' in parsed) {
    if (/Only SELECT/.test(parsed.error)) refuse('a view is defined by one SELECT statement');
    refuse(`cannot parse its SQL: ${parsed.error}`);
  }
  const statements = (parsed as { statements: AstNode[] }).statements;
  if (statements.length !== 1) refuse(`a view is defined by one SELECT statement, this holds ${statements.length}`);
  const node = statements[0]!;
  if (node.type !== 'SELECT_NODE') refuse('UNION, INTERSECT and EXCEPT are not supported in a view');
  if (((node.cte_map as { map: unknown[] }).map ?? []).length > 0) refuse('WITH (a common table expression) is not supported in a view');
  for (const modifier of (node.modifiers as AstNode[]) ?? []) {
    const construct = CONSTRUCT_BY_MODIFIER[String(modifier.type)] ?? String(modifier.type);
    refuse(`${construct} is not supported in a view (order and limit when you query it: ?order=...&limit=...)`);
  }
  const from = node.from_table as AstNode;
  if (from.type !== 'BASE_TABLE') refuse(`${CONSTRUCT_BY_FROM[String(from.type)] ?? String(from.type)} is not supported in a view: it reads one stream or table`);
  const source = String(from.table_name);
  const columns = sources.get(source);
  if (!columns) refuse(`reads "${source}", which is no declared stream or table`);
  if (node.having) refuse('HAVING is not supported in a view (filter when you query it)');
  if (node.qualify) refuse('QUALIFY is not supported in a view');
  if (node.sample) refuse('SAMPLE is not supported in a view');
  const groupSets = node.group_sets as number[][];
  if (groupSets.length > 1) refuse('GROUPING SETS, ROLLUP and CUBE are not supported in a view');

  let whereSql: string | null = null;
  if (node.where_clause) {
    const where = node.where_clause as AstNode;
    if (find(where, isWindow)) refuse('a window function in WHERE is not supported');
    if (find(where, isSubquery)) refuse('a subquery in WHERE is not supported in a view');
    whereSql = await parser.expressionSql(where);
  }

  const isAggregate = (n: AstNode) => n.class === 'FUNCTION' && aggregates.has(String(n.function_name));
  const keys: (ViewKey & { node: AstNode })[] = [];
  const measures: ViewMeasure[] = [];
  const names = new Set<string>();
  for (const item of node.select_list as AstNode[]) {
    const window = find(item, isWindow);
    if (window) refuse(`the window function ${String(window.function_name)}() is not supported in a view`);
    if (find(item, isSubquery)) refuse('a subquery in the select list is not supported in a view');
    if (item.class === 'STAR') refuse('SELECT * is not supported in a view: name the group-by columns and measures');
    const alias = String(item.alias ?? '');
    if (isAggregate(item)) {
      const fn = String(item.function_name);
      const kind = MEASURE_FUNCTIONS[fn];
      const shown = fn === 'count_star' ? 'count(*)' : `${fn}()`;
      if (!kind) refuse(`${fn}() is not a mergeable aggregate; use count, sum, min, max, avg, approx_count_distinct or approx_quantile`);
      if (item.distinct) {
        refuse(`${fn}(DISTINCT ...) is not supported: exact distinct counts cannot be merged; use approx_count_distinct(...)`);
      }
      if (item.filter) refuse(`${shown} with FILTER is not supported in a view; put the condition in WHERE or a CASE`);
      if (((item.order_bys as { orders: unknown[] }).orders ?? []).length > 0) refuse(`${shown} with ORDER BY is not supported`);
      const args = (item.children as AstNode[]) ?? [];
      for (const arg of args) if (find(arg, isAggregate)) refuse(`an aggregate inside ${shown} is not supported`);
      if (!alias) refuse(`name the measure ${shown}: for example ${shown.replace('()', '(x)')} AS total`);
      let quantile: number | undefined;
      if (kind === 'approx_quantile') {
        if (args.length !== 2) refuse('approx_quantile takes a value and one quantile: approx_quantile(x, 0.95)');
        quantile = constantNumber(args[1]!) ?? refuse('approx_quantile needs a constant quantile between 0 and 1 (one, not a list)');
        if (!(quantile > 0 && quantile < 1)) refuse(`approx_quantile's quantile must lie between 0 and 1, not ${quantile}`);
      } else if (kind !== 'count' || fn === 'count') {
        if (args.length !== 1) refuse(`${fn}() takes one argument in a view`);
      }
      const argSql = args.length > 0 ? await parser.expressionSql(args[0]!) : null;
      if (names.has(alias)) refuse(`two columns are named "${alias}"`);
      names.add(alias);
      measures.push({ name: alias, kind: kind!, argSql, ...(quantile !== undefined ? { quantile } : {}) });
      continue;
    }
    const nested = find(item, isAggregate);
    if (nested) {
      refuse(
        `the expression ${alias ? `"${alias}" ` : ''}over the aggregate ${String(nested.function_name)}() is not supported: ` +
          'define each measure on its own (sum(x) AS total, count(*) AS n) and combine them when you query',
      );
    }
    const keyName = alias || (item.class === 'COLUMN_REF' ? (item.column_names as string[]).at(-1)! : '');
    if (!keyName) refuse(`name the group-by expression ${await parser.expressionSql(item)}: add AS name`);
    if (names.has(keyName)) refuse(`two columns are named "${keyName}"`);
    names.add(keyName);
    keys.push({ name: keyName, sql: await parser.expressionSql(item), node: item });
  }
  if (measures.length === 0) refuse('a view needs at least one measure (count, sum, min, max, avg, approx_count_distinct, approx_quantile)');

  if (node.aggregate_handling !== 'FORCE_AGGREGATES') {
    const groups = node.group_expressions as AstNode[];
    const grouped = new Set<string>();
    for (const group of groups) {
      const key = await resolveGroup(group, keys, parser);
      if (key === null) refuse(`GROUP BY ${await parser.expressionSql(group)} is not in the select list; select every group-by column`);
      grouped.add(key!);
    }
    for (const key of keys) if (!grouped.has(key.name)) refuse(`"${key.name}" is selected but not in GROUP BY`);
  }

  const definition: ViewDefinition = {
    name,
    sql,
    source,
    whereSql,
    keys: keys.map(({ name: keyName, sql: keySql }) => ({ name: keyName, sql: keySql })),
    measures,
  };
  return definition;
}

/** Which select-list key a GROUP BY entry means: by position, by alias, or by the same expression. */
async function resolveGroup(group: AstNode, keys: readonly (ViewKey & { node: AstNode })[], parser: SqlParser): Promise<string | null> {
  const position = group.class === 'CONSTANT' ? constantNumber(group) : null;
  if (position !== null) return keys[position - 1]?.name ?? null;
  if (group.class === 'COLUMN_REF') {
    const column = (group.column_names as string[]).at(-1)!;
    const byName = keys.find((key) => key.name === column);
    if (byName) return byName.name;
  }
  const text = await parser.expressionSql(group);
  return keys.find((key) => key.sql === text)?.name ?? null;
}

/** The number a constant node holds (DECIMAL constants carry their scale), or null. */
function constantNumber(node: AstNode): number | null {
  if (node.class !== 'CONSTANT') return null;
  const value = node.value as { type: { id: string; type_info: { scale?: number } | null }; is_null: boolean; value: unknown };
  if (value.is_null) return null;
  const raw = Number(value.value);
  if (!Number.isFinite(raw)) return null;
  return value.type.id === 'DECIMAL' ? raw / 10 ** (value.type.type_info?.scale ?? 0) : raw;
}

/** An empty relation with the source's columns and types, to check a view's SQL against without data. */
export function emptySourceSql(columns: readonly FieldSpec[]): string {
  const list = columns.map((c) => `CAST(NULL AS ${DUCKDB_TYPES[c.type]}) AS ${quoteIdent(c.name)}`).join(', ');
  return `SELECT ${list} WHERE false`;
}
