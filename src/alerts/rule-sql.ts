import { quoteIdent } from '../util/duckdb.js';
import { mergeSql, type MeasureKind, type PartialRelations, type ViewDefinition, type ViewMeasure } from '../views/index.js';
import type { AlertRule } from './compile-alerts.js';

/**
 * Measures whose value over no rows is 0: a page without a view in the latest minute had 0 views, not an unknown
 * number of them. The others (min, max, avg, a quantile) have no value over no rows, and a rule over no value
 * does not hold.
 */
const ZERO_WHEN_EMPTY: ReadonlySet<MeasureKind> = new Set(['count', 'sum', 'approx_count_distinct']);

const SKETCH_KINDS: ReadonlySet<MeasureKind> = new Set(['approx_count_distinct', 'approx_quantile']);

/**
 * The SQL of one evaluation of a rule over a layer's partial relations (a snapshot's `merged` or `speed`): one row
 * of `value` (DOUBLE, or NULL) and `bucket` (the evaluated time bucket in epoch ms, or NULL).
 *
 * The value is the rule's measure merged over every group that `where` selects, as if the view were grouped by
 * nothing else: the view's own merge (src/views/plan.ts) run with no group-by columns over the partials, filtered
 * first. So a count or sum adds up, min and max take the extreme, an average weighs every source row alike
 * (not an average of averages), and sketches merge (a distinct count does not count a user twice across pages).
 *
 * When the view has a time key (`timeKey`: its first group-by column of a timestamp or date type) only the latest
 * bucket counts: the greatest value of that key among all the layer's rows, whatever `where` selects, so that a
 * page that stops getting traffic reads 0 in the current minute instead of its last busy one.
 *
 * `where` is DuckDB's own re-print of one checked expression (compile-alerts.ts), naming group-by columns, which
 * every partial relation carries; it is spliced in parenthesized and cannot change the query's shape.
 */
export function ruleValueSql(rule: AlertRule, relations: PartialRelations, timeKey: string | null): string {
  const { view, measure } = rule;
  const conditions: string[] = [];
  if (rule.whereSql !== null) conditions.push(`(${rule.whereSql})`);
  if (timeKey !== null) conditions.push(`${quoteIdent(timeKey)} = (SELECT "__bucket" FROM "__alert_latest")`);
  const narrow = (sql: string) => (conditions.length > 0 ? `SELECT * FROM (${sql}) AS relation WHERE ${conditions.join(' AND ')}` : sql);
  const sketch = relations.sketches[measure.name];
  const reduced: ViewDefinition = { ...view, keys: [], measures: reducedMeasures(view, measure) };
  const merged = mergeSql(reduced, {
    scalar: narrow(relations.scalar),
    sketches: sketch === undefined ? {} : { [measure.name]: narrow(sketch) },
  });
  const column = `${quoteIdent(measure.name)}::DOUBLE`;
  const value = ZERO_WHEN_EMPTY.has(measure.kind) ? `coalesce(${column}, 0)` : column;
  // Names no partial relation holds, so that neither the CTE nor its column can be mistaken for a view's column.
  const latest =
    timeKey === null
      ? 'SELECT NULL::TIMESTAMP AS "__bucket"'
      : `SELECT max(${quoteIdent(timeKey)})::TIMESTAMP AS "__bucket" FROM (${relations.scalar}) AS partials`;
  return `WITH "__alert_latest" AS MATERIALIZED (${latest}) SELECT ${value} AS value, (SELECT epoch_ms("__bucket") FROM "__alert_latest") AS bucket FROM (${merged}) AS alert`;
}

/**
 * The measures the reduced merge computes: the rule's, and beside a sketch measure one scalar column, since a merge
 * with no group-by columns selects its scalar measures from the scalar partials (a view of sketches only has a
 * `__rows` count there; see scalarPartialSql).
 */
function reducedMeasures(view: ViewDefinition, measure: ViewMeasure): ViewMeasure[] {
  if (!SKETCH_KINDS.has(measure.kind)) return [measure];
  const companion = view.measures.find((m) => !SKETCH_KINDS.has(m.kind)) ?? { name: '__rows', kind: 'count', argSql: null };
  return [companion, measure];
}

/** DuckDB types an alert can compare with a number. */
export function isNumericType(type: string): boolean {
  return /^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|DOUBLE|DECIMAL)/i.test(type);
}

/** DuckDB types of a time bucket: a view's time key has one of them. */
export function isTimeType(type: string): boolean {
  return /^(TIMESTAMP|DATE)/i.test(type);
}
