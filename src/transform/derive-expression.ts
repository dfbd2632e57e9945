import type { AstNode, SqlParser } from '../views/sql-parser.js';

/**
 * Reads a `derive` expression with DuckDB's own parser: it must be one scalar expression that gives the same value
 * for the same record in every run (the batch layer, the speed layer and a from-scratch run must agree), so window
 * functions, aggregates, subqueries and functions such as now() or random() are refused. Answers the expression as
 * DuckDB prints it back, which is one expression by construction whatever text it came from, or why it is refused.
 */
export async function readDeriveExpression(
  expression: string,
  columns: ReadonlySet<string>,
  parser: SqlParser,
  functions: { readonly aggregates: ReadonlySet<string>; readonly unstable: ReadonlySet<string> },
): Promise<{ sql: string } | { problem: string }> {
  const parsed = await parser.parse(`SELECT (${expression}) AS "derived" FROM source`);
  if ('error' in parsed) return { problem: `cannot parse the expression: ${parsed.error}` };
  const node = parsed.statements[0];
  // Anything but `SELECT <one item> FROM source` means the text closed the parenthesis and went on.
  const single =
    parsed.statements.length === 1 &&
    node !== undefined &&
    node.type === 'SELECT_NODE' &&
    (node.select_list as unknown[]).length === 1 &&
    (node.from_table as AstNode).type === 'BASE_TABLE' &&
    (node.from_table as AstNode).table_name === 'source' &&
    node.where_clause === null &&
    node.having === null &&
    node.qualify === null &&
    node.sample === null &&
    (node.group_expressions as unknown[]).length === 0 &&
    (node.modifiers as unknown[]).length === 0 &&
    ((node.cte_map as { map: unknown[] }).map ?? []).length === 0;
  if (!single) return { problem: 'expected one SQL scalar expression' };
  const item = (node.select_list as AstNode[])[0]!;
  const lowerColumns = new Set([...columns].map((column) => column.toLowerCase()));
  const unstable = (name: string) => functions.unstable.has(name) || SPECIAL_VALUES.has(name);
  for (const child of walk(item)) {
    if (child.class === 'WINDOW') return { problem: `the window function ${String(child.function_name)}() is not allowed: a derived column is computed from its record alone` };
    if (child.class === 'SUBQUERY') return { problem: 'a subquery is not allowed: a derived column is computed from its record alone' };
    if (child.class === 'FUNCTION') {
      const name = String(child.function_name).toLowerCase();
      if (functions.aggregates.has(name)) return { problem: `${name}() is an aggregate; a derived column is computed from its record alone (aggregate in a view)` };
      if (unstable(name)) return { problem: unstableProblem(name) };
    }
    // `current_timestamp` and friends parse as column names and bind as functions when no column has the name.
    if (child.class === 'COLUMN_REF') {
      const names = child.column_names as string[];
      const name = names[0]!.toLowerCase();
      if (names.length === 1 && !lowerColumns.has(name) && unstable(name)) return { problem: unstableProblem(name) };
    }
  }
  return { sql: await parser.expressionSql(item as AstNode) };
}

/**
 * SQL's special values, which parse as column names and read the clock; duckdb_functions() lists some of them
 * under other names, or as CONSISTENT (current_localtimestamp), so they are named here.
 */
const SPECIAL_VALUES: ReadonlySet<string> = new Set([
  'current_timestamp',
  'current_time',
  'current_date',
  'localtimestamp',
  'localtime',
  'current_localtimestamp',
  'current_localtime',
]);

const unstableProblem = (name: string) =>
  `${name} gives a different value in each run, so the batch and speed layers would disagree; a derived column must depend on its record only`;

/** `node` and every expression under it. */
function* walk(node: AstNode): Generator<AstNode> {
  yield node;
  for (const [key, value] of Object.entries(node)) {
    // Constants and types hold no expressions, and their `value` objects would look like nodes.
    if (key === 'value' || key === 'cast_type' || key === 'type') continue;
    const items = Array.isArray(value) ? value : [value];
    for (const item of items) if (item !== null && typeof item === 'object') yield* walk(item as AstNode);
  }
}
