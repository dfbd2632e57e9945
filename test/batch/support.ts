import { independentQuery, postRecords, seededRandom, type RunningStrata } from '../fixtures/strata.js';

/** The example view, with every exact measure beside the two approximate ones. */
export const PAGE_MINUTE = `SELECT page, time_bucket(INTERVAL '1 minute', ts) AS minute, count(*) AS views, count(amount) AS paid,
  sum(amount) AS revenue, min(amount) AS low, max(amount) AS high, avg(amount) AS mean,
  approx_count_distinct(user_id) AS users, approx_quantile(amount, 0.95) AS p95_amount
  FROM clicks WHERE page IS NOT NULL GROUP BY page, minute`;

/** Click events spread over the given days, from a seed. */
export function clickEvents(seed: number, count: number, days: readonly string[], prefix = 'e'): Record<string, unknown>[] {
  const random = seededRandom(seed);
  return Array.from({ length: count }, (_, i) => ({
    event_id: `${prefix}${i}`,
    ts: `${days[Math.floor(random() * days.length)]}T10:${String(Math.floor(random() * 20)).padStart(2, '0')}:${String(Math.floor(random() * 60)).padStart(2, '0')}Z`,
    user_id: `u${Math.floor(random() * 300)}`,
    page: `/p${Math.floor(random() * 6)}`,
    amount: random() < 0.2 ? null : Math.round(random() * 100_000) / 100,
  }));
}

/** Ingests events over HTTP in requests of 500; throws if any is refused. */
export async function ingest(server: RunningStrata, events: readonly Record<string, unknown>[]): Promise<void> {
  for (let i = 0; i < events.length; i += 500) {
    const answer = await postRecords(server.url, 'clicks', JSON.stringify(events.slice(i, i + 500)));
    if (answer.status !== 200 || (answer.body as { failed: number }).failed !== 0) throw new Error(`ingest failed: ${JSON.stringify(answer.body)}`);
  }
}

export type Row = Record<string, unknown>;

/** `page_minute__batch` through Strata's SQL engine, keyed by page and minute. */
export async function batchRows(server: RunningStrata): Promise<Map<string, Row>> {
  const answer = await server.strata.sql.queryAll(
    `SELECT *, page || ' ' || strftime(minute, '%Y-%m-%dT%H:%M') AS __key FROM page_minute__batch`,
  );
  return new Map(answer.rows.map((row) => [String(row.__key), row as Row]));
}

/** The view computed by plain DuckDB over the lake's files, exact count(DISTINCT) and every amount per group. */
export async function plainRows(lakeDir: string): Promise<Map<string, Row>> {
  const rows = await independentQuery(
    `SELECT page || ' ' || strftime(minute, '%Y-%m-%dT%H:%M') AS __key, * FROM (
       SELECT page, time_bucket(INTERVAL '1 minute', ts) AS minute, count(*) AS views, count(amount) AS paid,
              sum(amount) AS revenue, min(amount) AS low, max(amount) AS high, avg(amount) AS mean,
              count(DISTINCT user_id) AS users, list_sort(list(amount) FILTER (WHERE amount IS NOT NULL)) AS amounts
         FROM read_parquet('${lakeDir}/raw/clicks/*/*.parquet', hive_partitioning = true)
        WHERE page IS NOT NULL GROUP BY page, minute)`,
  );
  return new Map(rows.map((row) => [String(row.__key), row]));
}

const num = (value: unknown) => (value === null ? null : Number(value));

/** Asserts a batch row equals the plain one: exact for exact measures, floats to 1e-9, sketches within bounds. */
export function compareRow(key: string, actual: Row | undefined, expected: Row, alpha: number): string[] {
  const problems: string[] = [];
  if (!actual) return [`${key}: missing from the batch table`];
  for (const column of ['views', 'paid']) {
    if (num(actual[column]) !== num(expected[column])) problems.push(`${key}.${column}: ${String(actual[column])} != ${String(expected[column])}`);
  }
  for (const column of ['revenue', 'low', 'high', 'mean']) {
    const a = num(actual[column]);
    const e = num(expected[column]);
    if (a === null || e === null ? a !== e : Math.abs(a - e) > 1e-9 * Math.max(1, Math.abs(e))) {
      problems.push(`${key}.${column}: ${a} != ${e}`);
    }
  }
  const users = Number(expected.users);
  // HyperLogLog, 2^12 registers: 1.6 % standard error. At these small counts the estimate is linear counting,
  // which counts occupied registers, so two users sharing a register count once: n users share about n²/8192
  // pairs (17 users: two such pairs once in about 2,000 groups, as seed 1152539070 has). Up to 3 off is allowed,
  // as the lambda invariant test allows.
  if (Math.abs(Number(actual.users) - users) > Math.max(3, 0.1 * users)) problems.push(`${key}.users: ${String(actual.users)} vs ${users}`);
  const amounts = (expected.amounts as number[] | null) ?? [];
  if (amounts.length === 0) {
    if (actual.p95_amount !== null) problems.push(`${key}.p95_amount: ${String(actual.p95_amount)} for no amounts`);
  } else {
    const atRank = amounts[Math.floor(0.95 * (amounts.length - 1))]!;
    if (Math.abs(Number(actual.p95_amount) - atRank) > Math.abs(atRank) * alpha * 1.0001 + 1e-9) {
      problems.push(`${key}.p95_amount: ${String(actual.p95_amount)} vs ${atRank}`);
    }
  }
  return problems;
}
