import type { AlertConfig } from '../config/index.js';
import { ConfigError } from '../errors.js';
import { SqlParser, type AstNode, type ViewDefinition, type ViewMeasure } from '../views/index.js';

/** An alert rule understood against its view: the measure it reads and its condition as DuckDB printed it back. */
export interface AlertRule {
  readonly config: AlertConfig;
  readonly view: ViewDefinition;
  readonly measure: ViewMeasure;
  /**
   * The `where` condition re-printed by DuckDB from its own parse tree: exactly one expression, whatever text
   * was written around it, so it can be put into a larger query without ever changing that query's shape.
   */
  readonly whereSql: string | null;
}

/** The table name the condition is parsed against; it is never run, only parsed. */
const PARSE_TABLE = '__alert_condition';

/**
 * Checks each alert against the compiled views and answers the rules, or throws {@link ConfigError} naming every
 * alert at fault: a measure the view does not have, a `where` that does not parse as one SQL condition, or that
 * names anything but the view's group-by columns (a measure, a source field, a subquery, an aggregate). The config
 * layer checked already that each alert's view exists. `Strata.open` calls this before anything is opened.
 */
export async function compileAlerts(alerts: ReadonlyMap<string, AlertConfig>, views: ReadonlyMap<string, ViewDefinition>): Promise<AlertRule[]> {
  if (alerts.size === 0) return [];
  const problems: string[] = [];
  const rules: AlertRule[] = [];
  const parser = await SqlParser.open();
  try {
    const aggregates = await parser.aggregateNames();
    for (const alert of alerts.values()) {
      const at = `alerts.${alert.name}`;
      const before = problems.length;
      const view = views.get(alert.view);
      if (!view) {
        problems.push(`${at}.view: "${alert.view}" is not a view of the config`);
        continue;
      }
      const keys = view.keys.map((key) => key.name);
      const measure = view.measures.find((m) => m.name === alert.measure);
      if (!measure) {
        const what = keys.includes(alert.measure) ? 'a group-by column' : 'not a column';
        problems.push(
          `${at}.measure: "${alert.measure}" is ${what} of view "${view.name}", not a measure (measures: ${view.measures.map((m) => m.name).join(', ')})`,
        );
      }
      let whereSql: string | null = null;
      if (alert.where !== null) {
        const checked = await checkCondition(alert.where, view, parser, aggregates);
        if ('problem' in checked) problems.push(`${at}.where: ${checked.problem}`);
        else whereSql = checked.sql;
      }
      if (measure && problems.length === before) rules.push({ config: alert, view, measure, whereSql });
    }
  } finally {
    await parser.close();
  }
  if (problems.length > 0) throw new ConfigError(`config: ${problems.join('; ')}`);
  return rules;
}

/**
 * Parses `condition` as the WHERE clause of a SELECT with DuckDB's parser, requires that the statement holds that
 * clause and nothing else (so text such as `true) OR (1=1` or `x GROUP BY y` is refused, not spliced), and
 * answers the clause printed back from its parse tree, or the problem.
 */
async function checkCondition(
  condition: string,
  view: ViewDefinition,
  parser: SqlParser,
  aggregates: ReadonlySet<string>,
): Promise<{ sql: string } | { problem: string }> {
  const parsed = await parser.parse(`SELECT 1 FROM ${PARSE_TABLE} WHERE ${condition}`);
  if ('error' in parsed) {
    // Only a SELECT can be serialized: `x; DROP TABLE t` parses, and is refused as more than a condition.
    if (/Only SELECT/.test(parsed.error)) return { problem: `${JSON.stringify(condition)} is not one SQL condition` };
    return { problem: `cannot parse ${JSON.stringify(condition)} as a SQL condition: ${parsed.error}` };
  }
  const [node, ...more] = parsed.statements;
  const from = node?.from_table as AstNode | undefined;
  const alone =
    node !== undefined &&
    more.length === 0 &&
    node.type === 'SELECT_NODE' &&
    (node.select_list as unknown[]).length === 1 &&
    from?.type === 'BASE_TABLE' &&
    from.table_name === PARSE_TABLE &&
    ((node.modifiers as unknown[] | undefined) ?? []).length === 0 &&
    (((node.cte_map as { map?: unknown[] } | undefined)?.map ?? []).length === 0) &&
    ((node.group_expressions as unknown[] | undefined) ?? []).length === 0 &&
    !node.having &&
    !node.qualify &&
    !node.sample &&
    node.where_clause !== null &&
    typeof node.where_clause === 'object';
  if (!alone) return { problem: `${JSON.stringify(condition)} is not one SQL condition (write e.g. "page = '/checkout'")` };
  const where = node.where_clause as AstNode;

  // DuckDB resolves identifiers without regard to case, so `Page` is the key `page`.
  const keys = new Map(view.keys.map((key) => [key.name.toLowerCase(), key.name]));
  const problems = new Set<string>();
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) {
      for (const item of value) visit(item);
      return;
    }
    if (value === null || typeof value !== 'object') return;
    const item = value as AstNode;
    switch (item.class) {
      case 'COLUMN_REF': {
        const names = item.column_names as string[];
        const name = names.join('.');
        if (names.length !== 1 || !keys.has(names[0]!.toLowerCase())) {
          const measure = view.measures.some((m) => m.name.toLowerCase() === name.toLowerCase());
          const columns = [...keys.values()].join(', ') || 'none';
          problems.add(
            `"${name}" is ${measure ? 'a measure' : 'not a group-by column'} of view "${view.name}"; a condition names the view's group-by columns only (${columns})`,
          );
        }
        break;
      }
      case 'SUBQUERY':
        problems.add('a subquery is not allowed in an alert condition');
        break;
      case 'WINDOW':
        problems.add('a window function is not allowed in an alert condition');
        break;
      case 'STAR':
        problems.add('* is not allowed in an alert condition');
        break;
      case 'PARAMETER':
        problems.add('a parameter ($1, ?) is not allowed in an alert condition');
        break;
      case 'FUNCTION':
        if (aggregates.has(String(item.function_name))) {
          problems.add(`the aggregate ${String(item.function_name)}() is not allowed in an alert condition: the measure is the aggregate`);
        }
        break;
    }
    for (const child of Object.values(item)) visit(child);
  };
  visit(where);
  if (problems.size > 0) return { problem: [...problems].join('; ') };
  return { sql: await parser.expressionSql(where as AstNode) };
}

