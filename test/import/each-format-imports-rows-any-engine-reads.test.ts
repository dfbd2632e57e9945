import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { importFiles } from '../../src/ingest/index.js';
import type { Strata } from '../../src/strata.js';
import { clicksConfig, independentQuery, removeDir, tempDir } from '../fixtures/strata.js';
import { lakeFiles, openStrata, ORDER_SCHEMA, orders, ordersQuery, writeCsv, writeNdjson, writeParquetFile } from './support.js';

describe('bulk import of each format', () => {
  let dir: string;
  let strata: Strata;
  beforeEach(async () => {
    dir = await tempDir('strata-import-');
    strata = await openStrata(clicksConfig(), join(dir, 'data'));
  });
  afterEach(async () => {
    await strata.close();
    await removeDir(dir);
  });

  const lakeGlob = () => join(dir, 'data', 'lake', 'imported', 'orders', '*', '*.parquet');

  it.each([
    ['ndjson', (path: string) => writeNdjson(path, orders(30))],
    ['csv', (path: string) => writeCsv(path, orders(30) as unknown as Record<string, unknown>[])],
    ['parquet', (path: string) => writeParquetFile(path, ordersQuery(orders(30)))],
  ] as const)('imports %s into day partitions that plain DuckDB reads, registered in the catalog', async (format, write) => {
    const file = await write(join(dir, `orders.${format}`));

    const result = await importFiles(strata, { table: 'orders', files: [file], schema: ORDER_SCHEMA, eventTime: 'ts' });

    expect(result.files.map((f) => [f.state, f.error])).toEqual([['succeeded', null]]);
    expect(result.rows).toBe(30);
    const rows = await independentQuery(
      `SELECT dt, count(*)::INTEGER AS n, count(amount)::INTEGER AS amounts, sum(quantity)::INTEGER AS quantity,
              strftime(min(ts), '%Y-%m-%dT%H:%M:%S.%gZ') AS first
         FROM read_parquet('${lakeGlob()}', hive_partitioning = true) GROUP BY dt ORDER BY dt`,
    );
    // 20:00 on the 24th plus an hour per order: 4 orders that day, 24 the next, 2 on the 26th.
    const expected = (day: string) => {
      const held = orders(30).filter((order) => order.ts.startsWith(day));
      return {
        dt: day,
        n: held.length,
        amounts: held.filter((order) => order.amount !== null).length,
        quantity: held.reduce((sum, order) => sum + order.quantity, 0),
        first: held[0]!.ts,
      };
    };
    expect(rows).toEqual([expected('2026-11-24'), expected('2026-11-25'), expected('2026-11-26')]);
    expect(rows.map((row) => row.n)).toEqual([4, 24, 2]);
    const columns = await independentQuery(`SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet('${lakeGlob()}', hive_partitioning = false))`);
    expect(columns).toEqual([
      { column_name: 'order_id', column_type: 'VARCHAR' },
      { column_name: 'ts', column_type: 'TIMESTAMP' },
      { column_name: 'customer', column_type: 'VARCHAR' },
      { column_name: 'quantity', column_type: 'INTEGER' },
      { column_name: 'amount', column_type: 'DOUBLE' },
    ]);

    const chunks = await strata.catalog.chunks('orders');
    expect(chunks.map((chunk) => chunk.partition)).toEqual(['2026-11-24', '2026-11-25', '2026-11-26']);
    expect(chunks.reduce((sum, chunk) => sum + chunk.rows, 0)).toBe(30);
    expect(chunks.every((chunk) => chunk.source === `import:${file}` && chunk.shard === null)).toBe(true);
    const stem = `import-${result.files[0]!.contentHash!.slice(0, 16)}-1.parquet`;
    expect(await lakeFiles(join(dir, 'data'))).toEqual(chunks.map((chunk) => chunk.key));
    expect(chunks.every((chunk) => chunk.key === `imported/orders/dt=${chunk.partition}/${stem}`)).toBe(true);
    const table = await strata.catalog.table('orders');
    expect(table).toMatchObject({ kind: 'imported', schemaVersion: 1, rows: 30 });
  });

  it('coerces NDJSON values exactly as HTTP ingest does, and converts timestamp offsets to UTC in every format', async () => {
    const ndjson = await writeNdjson(join(dir, 'a.jsonl'), [
      { order_id: 'n1', ts: '2026-11-25T01:30:00+02:00', customer: 'c', quantity: '3', amount: '12.5' },
      { order_id: 'n2', ts: 1795570200000, customer: 'c', quantity: 1 },
    ]);
    const csv = join(dir, 'b.csv');
    await writeCsv(csv, [
      { order_id: 'c1', ts: '2026-11-25T01:30:00+02:00', customer: 'c', quantity: ' 4 ', amount: '' },
      { order_id: 'c2', ts: '2026-11-25 10:00:00', customer: 'c', quantity: '-1', amount: '1e2' },
    ]);
    const result = await importFiles(strata, { table: 'orders', files: [ndjson, csv], schema: ORDER_SCHEMA, eventTime: 'ts' });
    expect(result.files.map((f) => f.error)).toEqual([null, null]);

    const rows = await independentQuery(
      `SELECT order_id, strftime(ts, '%Y-%m-%dT%H:%M:%SZ') AS ts, quantity, amount, dt
         FROM read_parquet('${lakeGlob()}', hive_partitioning = true) ORDER BY order_id`,
    );
    expect(rows).toEqual([
      { order_id: 'c1', ts: '2026-11-24T23:30:00Z', quantity: 4, amount: null, dt: '2026-11-24' },
      { order_id: 'c2', ts: '2026-11-25T10:00:00Z', quantity: -1, amount: 100, dt: '2026-11-25' },
      { order_id: 'n1', ts: '2026-11-24T23:30:00Z', quantity: 3, amount: 12.5, dt: '2026-11-24' },
      { order_id: 'n2', ts: '2026-11-25T01:30:00Z', quantity: 1, amount: null, dt: '2026-11-25' },
    ]);
  });

  it('reports progress by bytes, rising to the total, with the rows registered so far', async () => {
    const files = [
      await writeNdjson(join(dir, 'a.ndjson'), orders(2000)),
      await writeCsv(join(dir, 'b.csv'), orders(100, 5000) as unknown as Record<string, unknown>[]),
    ];
    const seen: { bytesDone: number; bytesTotal: number; rows: number }[] = [];
    const result = await importFiles(strata, { table: 'orders', files, schema: ORDER_SCHEMA, onProgress: (p) => seen.push(p) });
    const done = seen.map((p) => p.bytesDone);
    expect(done).toEqual([...done].sort((a, b) => a - b));
    expect(seen.at(-1)).toMatchObject({ bytesDone: result.bytes, bytesTotal: result.bytes, rows: 2100 });
    expect(seen.some((p) => p.rows === 2000 && p.bytesDone < result.bytes)).toBe(true);
  });

  it('puts the rows of a table without event time under dt=__unknown__', async () => {
    const file = await writeNdjson(join(dir, 'orders.ndjson'), orders(5));
    await importFiles(strata, { table: 'orders', files: [file], schema: ORDER_SCHEMA });
    expect((await strata.catalog.chunks('orders')).map((chunk) => [chunk.partition, chunk.rows, chunk.minTime])).toEqual([
      ['__unknown__', 5, null],
    ]);
  });
});
