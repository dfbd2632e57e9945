import { quoteIdent } from '../util/duckdb.js';
import type { ViewDefinition, ViewMeasure } from './compile-view.js';

/**
 * The one partial plan of a view and its merge, derived from its definition (architecture §6). Both layers run
 * the same partial SQL in DuckDB (the batch layer over chunks, the speed layer over micro-batches), so NULL
 * handling, coercion, time bucketing and the hash inside a sketch are identical by construction; the serving
 * layer runs the merge SQL over the union of their partials.
 *
 * Partials are relations:
 * - `scalar`: the group keys and, per measure, count / sum / min / max (avg as its sum and count);
 * - per approx_count_distinct measure, a HyperLogLog as rows (keys, bucket, rank) merged with max(rank);
 * - per approx_quantile measure, a DDSketch as rows (keys, sign, idx, n) merged with sum(n).
 */

/** HyperLogLog precision: 2^12 = 4096 registers, standard error 1.04/√4096 ≈ 1.6 %. */
export const HLL_BITS = 12;
export const HLL_REGISTERS = 2 ** HLL_BITS;
/** DDSketch relative accuracy: a quantile is answered within 1 % of the value of the true rank. */
export const DDSKETCH_ALPHA = 0.01;
const GAMMA = (1 + DDSKETCH_ALPHA) / (1 - DDSKETCH_ALPHA);
/** Values closer to zero than this share the zero bucket. */
const DDSKETCH_MIN_MAGNITUDE = 1e-9;

/** The relations a view's partials are made of, by name: `scalar`, and one per sketch measure. */
export interface PartialRelations {
  readonly scalar: string;
  readonly sketches: Readonly<Record<string, string>>;
}

const keyColumns = (view: ViewDefinition) => view.keys.map((key) => quoteIdent(key.name));

function filtered(view: ViewDefinition, source: string, extra?: string): string {
  const conditions = [view.whereSql, extra].filter((c): c is string => c !== null && c !== undefined);
  return `FROM (${source}) AS source${conditions.length > 0 ? ` WHERE ${conditions.map((c) => `(${c})`).join(' AND ')}` : ''}`;
}

const keySelect = (view: ViewDefinition) => view.keys.map((key) => `${key.sql} AS ${quoteIdent(key.name)}`);

/** The partial columns a scalar measure contributes. */
function scalarPartials(measure: ViewMeasure): string[] {
  const column = quoteIdent(measure.name);
  const arg = measure.argSql;
  switch (measure.kind) {
    case 'count':
      return [`count(${arg ?? '*'}) AS ${column}`];
    case 'sum':
    case 'min':
    case 'max':
      return [`${measure.kind}(${arg}) AS ${column}`];
    case 'avg':
      return [`sum(${arg}) AS ${quoteIdent(`${measure.name}__sum`)}`, `count(${arg}) AS ${quoteIdent(`${measure.name}__count`)}`];
    default:
      return [];
  }
}

/** The view's scalar partial over `source` (SQL yielding the source's columns). */
export function scalarPartialSql(view: ViewDefinition, source: string): string {
  const columns = [...keySelect(view), ...view.measures.flatMap(scalarPartials)];
  if (view.measures.every((measure) => scalarPartials(measure).length === 0)) columns.push('count(*) AS "__rows"');
  return `SELECT ${columns.join(', ')} ${filtered(view, source)} GROUP BY ALL`;
}

/**
 * Partials folded into partials: `source` (rows of the relation, same columns) merged to one row per group
 * (and per sketch bucket), with the relation's columns, so many micro-batches' partials become one range's
 * without the records. Every merge here is exact: counts and sums add, min and max take theirs, HyperLogLog
 * registers take the largest rank, DDSketch buckets add their counts.
 */
export function foldPartialSql(view: ViewDefinition, measure: ViewMeasure | null, source: string): string {
  const keys = keyColumns(view);
  if (measure === null) {
    const folds = view.measures.flatMap(foldScalar);
    if (folds.length === 0) folds.push('sum("__rows")::BIGINT AS "__rows"');
    return `SELECT ${[...keys, ...folds].join(', ')} FROM (${source}) AS partials GROUP BY ALL`;
  }
  if (measure.kind === 'approx_count_distinct') return `SELECT ${[...keys, 'bucket', 'max(rank) AS rank'].join(', ')} FROM (${source}) AS partials GROUP BY ALL`;
  return `SELECT ${[...keys, 'sign', 'idx', 'sum(n)::BIGINT AS n'].join(', ')} FROM (${source}) AS partials GROUP BY ALL`;
}

/** The sketch partial of one approximate measure over `source`. */
export function sketchPartialSql(view: ViewDefinition, measure: ViewMeasure, source: string): string {
  const keys = keyColumns(view);
  const inner = [...keySelect(view), `${measure.argSql} AS "__value"`].join(', ');
  const notNull = `(${measure.argSql}) IS NOT NULL`;
  const rows = `SELECT ${inner} ${filtered(view, source, notNull)}`;
  if (measure.kind === 'approx_count_distinct') {
    // Bucket from the top 12 bits of the 64-bit hash; rank = leading zeros of the other 52 bits, plus one.
    // DuckDB has no count-leading-zeros: floor(log2(w)) in double precision, then corrected exactly.
    return `SELECT ${[...keys, 'bucket', 'max(rank)::TINYINT AS rank'].join(', ')} FROM (
      SELECT ${[...keys, 'bucket', `CASE WHEN w = 0 THEN ${65 - HLL_BITS} ELSE ${64 - HLL_BITS} - (p + CASE WHEN (1::UBIGINT << p) > w THEN -1 WHEN p < 63 AND (1::UBIGINT << (p + 1)) <= w THEN 1 ELSE 0 END) END AS rank`].join(', ')}
      FROM (SELECT ${[...keys, 'bucket', 'w', 'CASE WHEN w = 0 THEN 0 ELSE floor(log2(w::DOUBLE))::INTEGER END AS p'].join(', ')}
        FROM (SELECT ${[...keys, `(h >> ${64 - HLL_BITS})::SMALLINT AS bucket`, `h & ${2n ** BigInt(64 - HLL_BITS) - 1n}::UBIGINT AS w`].join(', ')}
          FROM (SELECT ${[...keys, 'hash("__value") AS h'].join(', ')} FROM (${rows}))))) GROUP BY ALL`;
  }
  // DDSketch: a value's bucket is ceil(log_γ |x|), kept per sign; merging adds counts bucket by bucket.
  return `SELECT ${[...keys, 'sign', 'idx', 'count(*)::BIGINT AS n'].join(', ')} FROM (
    SELECT ${[
      ...keys,
      `CASE WHEN abs("__value") < ${DDSKETCH_MIN_MAGNITUDE} THEN 0 WHEN "__value" < 0 THEN -1 ELSE 1 END::TINYINT AS sign`,
      `CASE WHEN abs("__value") < ${DDSKETCH_MIN_MAGNITUDE} THEN 0 ELSE ceil(ln(abs("__value"::DOUBLE)) / ln(${GAMMA}))::INTEGER END AS idx`,
    ].join(', ')} FROM (${rows})) GROUP BY ALL`;
}

/** The approximate measures, each of which has a sketch relation of its own. */
export function sketchMeasures(view: ViewDefinition): ViewMeasure[] {
  return view.measures.filter((m) => m.kind === 'approx_count_distinct' || m.kind === 'approx_quantile');
}

/** A scalar measure's partial columns merged into partial columns again, one row per group (see foldPartialSql). */
function foldScalar(measure: ViewMeasure): string[] {
  const column = quoteIdent(measure.name);
  switch (measure.kind) {
    case 'count':
      return [`sum(${column})::BIGINT AS ${column}`];
    case 'sum':
    case 'min':
    case 'max':
      return [`${measure.kind}(${column}) AS ${column}`];
    case 'avg': {
      const sum = quoteIdent(`${measure.name}__sum`);
      const count = quoteIdent(`${measure.name}__count`);
      return [`sum(${sum}) AS ${sum}`, `sum(${count})::BIGINT AS ${count}`];
    }
    default:
      return [];
  }
}

/** SQL merging a scalar measure's partial columns into its final value: its fold, but for avg's division. */
function mergeScalar(measure: ViewMeasure): string | null {
  if (measure.kind !== 'avg') return foldScalar(measure)[0] ?? null;
  const sum = quoteIdent(`${measure.name}__sum`);
  const count = quoteIdent(`${measure.name}__count`);
  return `CASE WHEN sum(${count}) = 0 THEN NULL ELSE sum(${sum})::DOUBLE / sum(${count}) END AS ${quoteIdent(measure.name)}`;
}

function sketchEstimateSql(view: ViewDefinition, measure: ViewMeasure, relation: string): string {
  const keys = keyColumns(view);
  const groupBy = keys.length > 0 ? ` GROUP BY ${keys.join(', ')}` : '';
  if (measure.kind === 'approx_count_distinct') {
    const m = HLL_REGISTERS;
    const alpha = 0.7213 / (1 + 1.079 / m);
    return `SELECT ${[...keys, `round(CASE WHEN raw <= ${2.5 * m} AND zeros > 0 THEN ${m} * ln(${m} / zeros) ELSE raw END)::BIGINT AS "__estimate"`].join(', ')}
      FROM (SELECT ${[...keys, `${alpha * m * m} / (s + zeros) AS raw`, 'zeros'].join(', ')}
        FROM (SELECT ${[...keys, `${m} - count(*) AS zeros`, 'sum(pow(2.0, -rank)) AS s'].join(', ')}
          FROM (${foldPartialSql(view, measure, relation)})${groupBy}))`;
  }
  const partitionBy = keys.length > 0 ? `PARTITION BY ${keys.join(', ')} ` : '';
  return `SELECT ${[...keys, `min(value) FILTER (WHERE cumulative > ${measure.quantile} * (total - 1)) AS "__estimate"`].join(', ')}
    FROM (SELECT ${[
      ...keys,
      'value',
      `sum(n) OVER (${partitionBy}ORDER BY value ROWS UNBOUNDED PRECEDING) AS cumulative`,
      `sum(n) OVER (${partitionBy}) AS total`,
    ].join(', ')}
      FROM (SELECT ${[...keys, `CASE WHEN sign = 0 THEN 0.0 ELSE sign * 2 * pow(${GAMMA}, idx) / ${GAMMA + 1} END AS value`, 'sum(n) AS n'].join(', ')}
        FROM (${relation}) GROUP BY ALL))${groupBy}`;
}

/**
 * The view's rows from its partials: scalar measures merged by group, each sketch estimated per group and
 * joined on the keys (NULL keys included: a NULL page is a group like any other).
 */
export function mergeSql(view: ViewDefinition, relations: PartialRelations): string {
  const keys = keyColumns(view);
  const scalars = view.measures.map(mergeScalar).filter((s): s is string => s !== null);
  const base = `SELECT ${[...keys, ...scalars].join(', ')} FROM (${relations.scalar})${keys.length > 0 ? ` GROUP BY ${keys.join(', ')}` : ''}`;
  const joins: string[] = [];
  const sketchColumns = new Map<string, string>();
  sketchMeasures(view).forEach((measure, i) => {
    const alias = `sketch_${i}`;
    const relation = relations.sketches[measure.name];
    if (relation === undefined) throw new Error(`no sketch relation for measure ${measure.name}`);
    const on = keys.length > 0 ? keys.map((key) => `base.${key} IS NOT DISTINCT FROM ${alias}.${key}`).join(' AND ') : 'true';
    joins.push(`LEFT JOIN (${sketchEstimateSql(view, measure, relation)}) AS ${alias} ON ${on}`);
    const estimate = `${alias}."__estimate"`;
    sketchColumns.set(measure.name, measure.kind === 'approx_count_distinct' ? `coalesce(${estimate}, 0)` : estimate);
  });
  const columns = [
    ...keys.map((key) => `base.${key}`),
    ...view.measures.map((measure) => `${sketchColumns.get(measure.name) ?? `base.${quoteIdent(measure.name)}`} AS ${quoteIdent(measure.name)}`),
  ];
  return `SELECT ${columns.join(', ')} FROM (${base}) AS base ${joins.join(' ')}`;
}
