import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FieldSpec } from '../../src/config/index.js';
import {
  compileView,
  DDSKETCH_ALPHA,
  foldPartialSql,
  mergeSql,
  scalarPartialSql,
  sketchMeasures,
  sketchPartialSql,
  SqlParser,
  type ViewDefinition,
} from '../../src/views/index.js';
import { seededRandom } from '../fixtures/strata.js';

const CLICKS: FieldSpec[] = [
  { name: 'event_id', type: 'string', nullable: false },
  { name: 'ts', type: 'timestamp', nullable: false },
  { name: 'user_id', type: 'string', nullable: true },
  { name: 'page', type: 'string', nullable: true },
  { name: 'amount', type: 'double', nullable: true },
  { name: 'qty', type: 'int', nullable: true },
];
const SOURCES = new Map([['clicks', CLICKS]]);
const SEED = Number(process.env.STRATA_TEST_SEED ?? Math.floor(Math.random() * 2 ** 31));

describe(`a view's partial plan and merge (seed ${SEED})`, () => {
  let parser: SqlParser;
  let aggregates: Set<string>;
  let instance: DuckDBInstance;
  let db: DuckDBConnection;

  beforeAll(async () => {
    parser = await SqlParser.open();
    aggregates = await parser.aggregateNames();
    instance = await DuckDBInstance.create(':memory:');
    db = await instance.connect();
    const random = seededRandom(SEED);
    const rows: string[] = [];
    for (let i = 0; i < 20_000; i++) {
      const page = random() < 0.05 ? 'NULL' : `'/p${Math.floor(random() ** 2 * 12)}'`;
      const user = random() < 0.02 ? 'NULL' : `'u${Math.floor(random() * 3000)}'`;
      const amount = random() < 0.3 ? 'NULL' : (random() * 1000 - 100).toFixed(2);
      const qty = random() < 0.1 ? 'NULL' : String(Math.floor(random() * 50));
      const ts = `TIMESTAMP '2026-11-25 10:00:00' + INTERVAL ${Math.floor(random() * 7200)} SECOND`;
      rows.push(`('e${i}', ${ts}, ${user}, ${page}, ${amount}, ${qty}, ${Math.floor(random() * 7)})`);
    }
    await db.run(
      'CREATE TABLE clicks (event_id VARCHAR, ts TIMESTAMP, user_id VARCHAR, page VARCHAR, amount DOUBLE, qty INTEGER, chunk INTEGER)',
    );
    for (let i = 0; i < rows.length; i += 2000) await db.run(`INSERT INTO clicks VALUES ${rows.slice(i, i + 2000).join(', ')}`);
  });

  afterAll(async () => {
    await parser.close();
    db.closeSync();
    instance.closeSync();
  });

  const query = async (sql: string) => (await db.runAndReadAll(sql)).getRowObjectsJson() as Record<string, unknown>[];

  /** The view computed the Strata way: partials per chunk (as batch and speed would), unioned, merged. */
  async function mergedOverChunks(view: ViewDefinition, chunks: number[][]): Promise<Record<string, unknown>[]> {
    const sourceOf = (chunk: number[]) => `SELECT * EXCLUDE (chunk) FROM clicks WHERE chunk IN (${chunk.join(', ')})`;
    const union = (build: (source: string) => string) => chunks.map((chunk) => `(${build(sourceOf(chunk))})`).join(' UNION ALL ');
    const sketches: Record<string, string> = {};
    for (const measure of sketchMeasures(view)) sketches[measure.name] = union((source) => sketchPartialSql(view, measure, source));
    return query(`${mergeSql(view, { scalar: union((source) => scalarPartialSql(view, source)), sketches })} ORDER BY ALL`);
  }

  it('gives exactly what the SQL gives for count, sum, min, max and avg, however the data is split', async () => {
    const sql = `SELECT page, time_bucket(INTERVAL '10 minutes', ts) AS bucket, count(*) AS views, count(amount) AS paid,
                        sum(qty) AS items, min(amount) AS smallest, max(ts) AS latest, avg(qty) AS mean_qty
                   FROM clicks WHERE event_id <> 'e7' GROUP BY page, bucket`;
    const view = await compileView('page_buckets', sql, SOURCES, parser, aggregates);
    expect(view.keys.map((k) => k.name)).toEqual(['page', 'bucket']);
    expect(view.measures.map((m) => m.kind)).toEqual(['count', 'count', 'sum', 'min', 'max', 'avg']);
    const expected = await query(`SELECT * FROM (${sql.replace('FROM clicks', 'FROM (SELECT * EXCLUDE (chunk) FROM clicks)')}) ORDER BY ALL`);
    const bySeven = await mergedOverChunks(view, [[0], [1], [2], [3], [4], [5], [6]]);
    const byTwo = await mergedOverChunks(view, [[0, 2, 4, 6], [1, 3, 5]]);
    const round = (rows: Record<string, unknown>[]) =>
      rows.map((row) => ({ ...row, mean_qty: row.mean_qty === null ? null : Number((row.mean_qty as number).toFixed(9)) }));
    expect(round(bySeven)).toEqual(round(expected));
    expect(round(byTwo)).toEqual(round(expected));
    expect(expected.length).toBeGreaterThan(100);
  });

  it('merges a global aggregate (no group-by) and NULL group keys', async () => {
    const view = await compileView('totals', 'SELECT count(*) AS n, sum(qty) AS items FROM clicks', SOURCES, parser, aggregates);
    expect(await mergedOverChunks(view, [[0, 1], [2, 3, 4], [5, 6]])).toEqual(await query('SELECT count(*) AS n, sum(qty) AS items FROM clicks'));
    const byPage = await compileView('by_page', 'SELECT page, count(*) AS n FROM clicks GROUP BY page', SOURCES, parser, aggregates);
    const rows = await mergedOverChunks(byPage, [[0, 1, 2], [3, 4, 5, 6]]);
    expect(rows.find((row) => row.page === null)?.n).toBe((await query('SELECT count(*)::BIGINT::VARCHAR AS n FROM clicks WHERE page IS NULL'))[0]!.n);
  });

  it('estimates distinct counts within the HyperLogLog bound and quantiles within the DDSketch bound', async () => {
    const sql = `SELECT page, approx_count_distinct(user_id) AS users, approx_quantile(amount, 0.95) AS p95,
                        approx_quantile(amount, 0.5) AS p50 FROM clicks GROUP BY page`;
    const view = await compileView('page_sketches', sql, SOURCES, parser, aggregates);
    const merged = await mergedOverChunks(view, [[0], [1, 2], [3, 4, 5, 6]]);
    // The same sketch over other chunks: merging is exact, so the answer is identical.
    expect(await mergedOverChunks(view, [[0, 1, 2, 3, 4, 5, 6]])).toEqual(merged);
    const exact = await query(`SELECT page, count(DISTINCT user_id)::INTEGER AS users,
        list_sort(list(amount) FILTER (WHERE amount IS NOT NULL)) AS amounts FROM clicks GROUP BY page ORDER BY ALL`);
    for (const truth of exact) {
      const row = merged.find((r) => r.page === truth.page)!;
      const users = Number(row.users);
      // 1.6 % standard error; six standard errors is a bound no seed should cross.
      expect(Math.abs(users - (truth.users as number)) / (truth.users as number)).toBeLessThan(0.1);
      const amounts = truth.amounts as number[];
      for (const [q, column] of [[0.95, 'p95'], [0.5, 'p50']] as const) {
        const atRank = amounts[Math.floor(q * (amounts.length - 1))]!;
        const estimate = row[column] as number;
        expect(Math.abs(estimate - atRank)).toBeLessThanOrEqual(Math.abs(atRank) * DDSKETCH_ALPHA * 1.0001 + 1e-9);
      }
    }
  });
  it('compiles typed literals and intervals, which DuckDB parses into nodes of its own', async () => {
    const view = await compileView(
      'v',
      "SELECT time_bucket(INTERVAL 1 DAY, ts) AS day, count(*) AS n FROM clicks WHERE ts >= TIMESTAMP '2026-11-25 10:30:00' GROUP BY day",
      SOURCES,
      parser,
      aggregates,
    );
    const rows = await query(`SELECT ${view.keys[0]!.sql} AS day, count(*) AS n FROM clicks WHERE ${view.whereSql} GROUP BY ALL`);
    const plain = await query(
      "SELECT time_bucket(INTERVAL 1 DAY, ts) AS day, count(*) AS n FROM clicks WHERE ts >= TIMESTAMP '2026-11-25 10:30:00' GROUP BY ALL",
    );
    expect(rows).toEqual(plain);
    expect(Number(rows[0]!.n)).toBeGreaterThan(0);
  });

  it('folds partials into partials (the speed layer compacting micro-batches) to one row per group, merging to the same answer', async () => {
    const views = [
      `SELECT page, time_bucket(INTERVAL '10 minutes', ts) AS bucket, count(*) AS views, sum(qty) AS items, min(amount) AS smallest,
              max(ts) AS latest, avg(qty) AS mean_qty, approx_count_distinct(user_id) AS users, approx_quantile(amount, 0.9) AS p90
         FROM clicks GROUP BY page, bucket`,
      // Approximate measures alone: the scalar relation counts rows.
      `SELECT page, approx_count_distinct(user_id) AS users FROM clicks GROUP BY page`,
      // No group-by at all.
      `SELECT count(amount) AS paid, approx_quantile(qty, 0.5) AS median_qty FROM clicks`,
    ];
    for (const [i, sql] of views.entries()) {
      const view = await compileView(`folded${i}`, sql, SOURCES, parser, aggregates);
      const sourceOf = (chunks: number[]) => `SELECT * EXCLUDE (chunk) FROM clicks WHERE chunk IN (${chunks.join(', ')})`;
      const perChunk = (partial: (source: string) => string, chunks: number[]) => chunks.map((chunk) => `(${partial(sourceOf([chunk]))})`).join(' UNION ALL ');
      // Chunks 0-4 as five micro-batches folded into one range, beside chunks 5 and 6 as they are.
      const foldedThenRest = (partial: (source: string) => string, measure: Parameters<typeof foldPartialSql>[1]) =>
        `(${foldPartialSql(view, measure, perChunk(partial, [0, 1, 2, 3, 4]))}) UNION ALL ${perChunk(partial, [5, 6])}`;
      const sketches: Record<string, string> = {};
      for (const measure of sketchMeasures(view)) sketches[measure.name] = foldedThenRest((source) => sketchPartialSql(view, measure, source), measure);
      const scalar = foldedThenRest((source) => scalarPartialSql(view, source), null);
      const folded = await query(`${mergeSql(view, { scalar, sketches })} ORDER BY ALL`);
      expect(folded, sql).toEqual(await mergedOverChunks(view, [[0], [1], [2], [3], [4], [5], [6]]));

      const keys = view.keys.map((key) => `"${key.name}"`);
      const once = async (relation: string, extra: string[]) => {
        const columns = [...keys, ...extra].join(', ') || '1';
        const [row] = await query(`SELECT (SELECT count(*) FROM (${relation})) AS n, (SELECT count(*) FROM (SELECT DISTINCT ${columns} FROM (${relation}))) AS d`);
        expect(row!.n, sql).toEqual(row!.d);
      };
      await once(foldPartialSql(view, null, perChunk((source) => scalarPartialSql(view, source), [0, 1, 2, 3, 4])), []);
      for (const measure of sketchMeasures(view)) {
        const extra = measure.kind === 'approx_count_distinct' ? ['bucket'] : ['sign', 'idx'];
        await once(foldPartialSql(view, measure, perChunk((source) => sketchPartialSql(view, measure, source), [0, 1, 2, 3, 4])), extra);
      }
    }
  });
});

describe('view SQL that cannot be decomposed is refused, naming the construct and the view', () => {
  let parser: SqlParser;
  let aggregates: Set<string>;
  beforeAll(async () => {
    parser = await SqlParser.open();
    aggregates = await parser.aggregateNames();
  });
  afterAll(async () => parser.close());

  it.each([
    ['a join', 'SELECT c.page, count(*) AS n FROM clicks c JOIN clicks d ON c.event_id = d.event_id GROUP BY c.page', /view "v": a join is not supported/],
    ['a window function', 'SELECT page, count(*) AS n, row_number() OVER () AS r FROM clicks GROUP BY page', /window function row_number\(\)/],
    ['ORDER BY', 'SELECT page, count(*) AS n FROM clicks GROUP BY page ORDER BY n', /view "v": ORDER BY is not supported/],
    ['LIMIT', 'SELECT page, count(*) AS n FROM clicks GROUP BY page LIMIT 10', /view "v": LIMIT is not supported/],
    ['exact count(DISTINCT)', 'SELECT page, count(DISTINCT user_id) AS users FROM clicks GROUP BY page', /count\(DISTINCT \.\.\.\) is not supported: exact distinct counts cannot be merged; use approx_count_distinct/],
    ['a non-mergeable aggregate', 'SELECT page, median(amount) AS m FROM clicks GROUP BY page', /median\(\) is not a mergeable aggregate/],
    ['another non-mergeable aggregate', 'SELECT page, string_agg(user_id, \',\') AS users FROM clicks GROUP BY page', /string_agg\(\) is not a mergeable aggregate/],
    ['HAVING', 'SELECT page, count(*) AS n FROM clicks GROUP BY page HAVING count(*) > 2', /HAVING is not supported/],
    ['UNION', 'SELECT page, count(*) AS n FROM clicks GROUP BY page UNION ALL SELECT page, count(*) AS n FROM clicks GROUP BY page', /UNION, INTERSECT and EXCEPT/],
    ['WITH', 'WITH x AS (SELECT * FROM clicks) SELECT page, count(*) AS n FROM x GROUP BY page', /WITH \(a common table expression\)/],
    ['a subquery in FROM', 'SELECT page, count(*) AS n FROM (SELECT * FROM clicks) GROUP BY page', /a subquery in FROM/],
    ['an unknown source', 'SELECT page, count(*) AS n FROM clickz GROUP BY page', /reads "clickz", which is no declared stream or table/],
    ['an expression over aggregates', 'SELECT page, sum(amount) / count(*) AS ratio FROM clicks GROUP BY page', /expression "ratio" over the aggregate/],
    ['a measure without a name', 'SELECT page, count(*) FROM clicks GROUP BY page', /name the measure count\(\*\)/],
    ['a statement that is no SELECT', 'DELETE FROM clicks', /one SELECT statement/],
    ['GROUPING SETS', 'SELECT page, count(*) AS n FROM clicks GROUP BY ROLLUP (page)', /GROUPING SETS, ROLLUP and CUBE/],
    ['a selected column not grouped', 'SELECT page, user_id, count(*) AS n FROM clicks GROUP BY page', /"user_id" is selected but not in GROUP BY/],
  ])('%s', async (_construct, sql, message) => {
    await expect(compileView('v', sql, SOURCES, parser, aggregates)).rejects.toThrow(message);
  });

  it('accepts GROUP BY ALL, positions and a view without WHERE', async () => {
    const view = await compileView('v', 'SELECT page AS p, count(*) AS n FROM clicks GROUP BY 1', SOURCES, parser, aggregates);
    expect(view.keys).toEqual([{ name: 'p', sql: 'page' }]);
    const all = await compileView('w', 'SELECT page, max(amount) AS top FROM clicks GROUP BY ALL', SOURCES, parser, aggregates);
    expect(all.measures).toEqual([{ name: 'top', kind: 'max', argSql: 'amount' }]);
  });

});
