import { readdir, writeFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { parseConfig, type ConfigInput } from '../../src/config/index.js';
import { Strata } from '../../src/strata.js';
import { sqlString } from '../../src/util/duckdb.js';

/** A Strata over `dataDir` without delivery: bulk import needs only the catalog, the store and the writer. */
export function openStrata(input: ConfigInput, dataDir: string): Promise<Strata> {
  return Strata.open({ config: parseConfig(input), dataDir, deliver: false });
}

/** Every file under the lake, as paths relative to it (staging aside), sorted. */
export async function lakeFiles(dataDir: string): Promise<string[]> {
  const root = join(dataDir, 'lake');
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => relative(root, join(entry.parentPath, entry.name)).split(sep).join('/'))
    .filter((path) => !path.startsWith('_staging/'))
    .sort();
}

/** An order as the import tests use it: a few types, event times over two days, an optional amount. */
export interface Order {
  readonly order_id: string;
  readonly ts: string;
  readonly customer: string;
  readonly quantity: number;
  readonly amount: number | null;
}

export function orders(count: number, from = 0): Order[] {
  return Array.from({ length: count }, (_, i) => {
    const n = from + i;
    return {
      order_id: `o${n}`,
      ts: new Date(Date.UTC(2026, 10, 24, 20) + n * 3_600_000).toISOString(),
      customer: `c${n % 7}`,
      quantity: (n % 5) + 1,
      amount: n % 4 === 0 ? null : n * 2.5,
    };
  });
}

/** The declared schema of {@link orders}. */
export const ORDER_SCHEMA = { order_id: 'string', ts: 'timestamp', customer: 'string', quantity: 'int', amount: 'double?' };

export async function writeNdjson(path: string, rows: readonly object[]): Promise<string> {
  await writeFile(path, rows.map((row) => JSON.stringify(row)).join('\n') + '\n');
  return path;
}

/** Writes rows as CSV with a header of their keys; null is an empty value. */
export async function writeCsv(path: string, rows: readonly Record<string, unknown>[]): Promise<string> {
  const columns = Object.keys(rows[0]!);
  const lines = [columns.join(','), ...rows.map((row) => columns.map((column) => (row[column] === null ? '' : String(row[column]))).join(','))];
  await writeFile(path, lines.join('\n') + '\n');
  return path;
}

/** Writes the result of `select` as a Parquet file with a DuckDB of its own. */
export async function writeParquetFile(path: string, select: string): Promise<string> {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    await connection.run(`COPY (${select}) TO ${sqlString(path)} (FORMAT parquet)`);
    return path;
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

/** The rows of {@link orders} as a SQL VALUES query, for writing Parquet. */
export function ordersQuery(rows: readonly Order[]): string {
  const values = rows.map(
    (row) =>
      `(${sqlString(row.order_id)}, TIMESTAMP ${sqlString(row.ts.replace('T', ' ').replace('Z', ''))}, ${sqlString(row.customer)}, ` +
      `${row.quantity}::INTEGER, ${row.amount === null ? 'NULL' : `${row.amount}::DOUBLE`})`,
  );
  return `SELECT * FROM (VALUES ${values.join(', ')}) AS t(order_id, ts, customer, quantity, amount)`;
}
