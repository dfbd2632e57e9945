import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SchemaError } from '../../src/errors.js';
import { importFiles } from '../../src/ingest/index.js';
import type { Strata } from '../../src/strata.js';
import { clicksConfig, independentQuery, removeDir, tempDir } from '../fixtures/strata.js';
import { lakeFiles, openStrata, ORDER_SCHEMA, orders, writeCsv, writeNdjson, writeParquetFile } from './support.js';

describe('schema inference and evolution of imported tables', () => {
  let dir: string;
  let strata: Strata;
  beforeEach(async () => {
    dir = await tempDir('strata-import-schema-');
    strata = await openStrata(clicksConfig(), join(dir, 'data'));
  });
  afterEach(async () => {
    await strata.close();
    await removeDir(dir);
  });

  it('infers a schema from a CSV file and records it as version 1', async () => {
    const file = await writeCsv(join(dir, 'orders.csv'), [
      { order_id: 'o1', ts: '2026-11-25T09:00:00Z', quantity: 3, amount: 1.5, paid: 'true', day: '2026-11-25' },
      { order_id: 'o2', ts: '2026-11-25T10:00:00Z', quantity: 4, amount: '', paid: 'false', day: '2026-11-26' },
    ]);
    const result = await importFiles(strata, { table: 'orders', files: [file], eventTime: 'ts' });
    expect(result.files[0]!.error).toBeNull();

    const table = (await strata.catalog.table('orders'))!;
    expect(table.schemaVersions.map((version) => version.version)).toEqual([1]);
    expect(table.columns).toEqual([
      { name: 'order_id', type: 'string', nullable: true },
      { name: 'ts', type: 'timestamp', nullable: true },
      { name: 'quantity', type: 'bigint', nullable: true },
      { name: 'amount', type: 'double', nullable: true },
      { name: 'paid', type: 'boolean', nullable: true },
      { name: 'day', type: 'date', nullable: true },
    ]);
    expect(table.partitions.map((partition) => partition.partition)).toEqual(['2026-11-25']);
  });

  it('infers timestamps and nested values from NDJSON and Parquet', async () => {
    const ndjson = await writeNdjson(join(dir, 'a.ndjson'), [
      { id: 'a', at: '2026-11-25T09:00:00Z', tags: ['x'], meta: { k: 1 } },
      { id: 'b', at: '2026-11-25T09:00:00.250+01:00', tags: [], meta: { k: 2 } },
    ]);
    await importFiles(strata, { table: 'things', files: [ndjson] });
    expect((await strata.catalog.table('things'))!.columns).toEqual([
      { name: 'id', type: 'string', nullable: true },
      { name: 'at', type: 'timestamp', nullable: true },
      { name: 'tags', type: 'json', nullable: true },
      { name: 'meta', type: 'json', nullable: true },
    ]);
    const parquet = await writeParquetFile(
      join(dir, 'p.parquet'),
      `SELECT 1::SMALLINT AS s, 2::UINTEGER AS h, 1.25::DECIMAL(6, 2) AS d, TIMESTAMPTZ '2026-11-25 10:00:00+02' AS tz, {'a': 1} AS st`,
    );
    await importFiles(strata, { table: 'typed', files: [parquet] });
    expect((await strata.catalog.table('typed'))!.columns.map((column) => `${column.name}:${column.type}`)).toEqual([
      's:int',
      'h:bigint',
      'd:double',
      'tz:timestamp',
      'st:json',
    ]);
    const rows = await independentQuery(
      `SELECT strftime(tz, '%H:%M') AS tz, st::VARCHAR AS st FROM read_parquet('${join(dir, 'data', 'lake', 'imported', 'typed', '*', '*.parquet')}')`,
    );
    expect(rows).toEqual([{ tz: '08:00', st: '{"a":1}' }]);
  });

  it('records a new version when a later file adds a column; older files read with NULL for it', async () => {
    const first = await writeNdjson(join(dir, 'first.ndjson'), orders(3));
    const second = await writeNdjson(
      join(dir, 'second.ndjson'),
      orders(2, 10).map((order) => ({ ...order, coupon: 'WINTER' })),
    );
    await importFiles(strata, { table: 'orders', files: [first], eventTime: 'ts' });
    const result = await importFiles(strata, { table: 'orders', files: [second], eventTime: 'ts' });
    expect(result.files[0]).toMatchObject({ state: 'succeeded', schemaVersion: 2 });

    const table = (await strata.catalog.table('orders'))!;
    expect(table.schemaVersions.map((version) => [version.version, version.change?.added ?? null])).toEqual([
      [1, null],
      [2, ['coupon']],
    ]);
    expect(new Set(table.chunkList.map((chunk) => chunk.schemaVersion))).toEqual(new Set([1, 2]));
    const rows = await independentQuery(
      `SELECT order_id, coupon FROM read_parquet('${join(dir, 'data', 'lake', 'imported', 'orders', '*', '*.parquet')}', union_by_name = true)
        ORDER BY order_id`,
    );
    expect(rows).toEqual([
      { order_id: 'o0', coupon: null },
      { order_id: 'o1', coupon: null },
      { order_id: 'o10', coupon: 'WINTER' },
      { order_id: 'o11', coupon: 'WINTER' },
      { order_id: 'o2', coupon: null },
    ]);
  });

  it('widens an inferred int column when a later file holds decimals, and keeps a bigint one', async () => {
    const ints = await writeParquetFile(join(dir, 'ints.parquet'), `SELECT 'a' AS id, 1::INTEGER AS n`);
    const doubles = await writeCsv(join(dir, 'doubles.csv'), [{ id: 'b', n: 2.5 }]);
    await importFiles(strata, { table: 'measures', files: [ints] });
    await importFiles(strata, { table: 'measures', files: [doubles] });
    const table = (await strata.catalog.table('measures'))!;
    expect(table.schemaVersions.map((version) => version.change?.widened ?? null)).toEqual([null, [{ column: 'n', from: 'int', to: 'double' }]]);
    expect(table.rows).toBe(2);

    // bigint to double could lose digits past 2^53, so the catalog refuses that change: the value is refused.
    const bigints = await writeCsv(join(dir, 'bigints.csv'), [{ id: 'c', n: 3 }]);
    const more = await writeCsv(join(dir, 'more.csv'), [{ id: 'd', n: 4 }, { id: 'e', n: 4.5 }]);
    await importFiles(strata, { table: 'counts', files: [bigints] });
    const result = await importFiles(strata, { table: 'counts', files: [more] });
    expect(result.files[0]!.error?.message).toBe('more.csv line 3: field "n": expected a 64-bit integer, got "4.5"');
  });

  it('refuses a declared schema that narrows a column, before reading any file', async () => {
    const file = await writeNdjson(join(dir, 'orders.ndjson'), orders(3));
    await importFiles(strata, { table: 'orders', files: [file], schema: ORDER_SCHEMA, eventTime: 'ts' });
    const before = await lakeFiles(join(dir, 'data'));
    const narrowed = { ...ORDER_SCHEMA, amount: 'int?' };
    const other = await writeNdjson(join(dir, 'more.ndjson'), orders(3, 100).map((order) => ({ ...order, amount: 1 })));

    const refused = importFiles(strata, { table: 'orders', files: [other], schema: narrowed, eventTime: 'ts' });

    await expect(refused).rejects.toThrow(SchemaError);
    await expect(refused).rejects.toThrow(/table "orders": incompatible schema change: column "amount" would change from double\? to int\?/);
    const table = (await strata.catalog.table('orders'))!;
    expect(table.schemaVersions).toHaveLength(1);
    expect(table.rows).toBe(3);
    expect(await lakeFiles(join(dir, 'data'))).toEqual(before);
  });

  it('refuses an inferred file whose values do not fit an existing column, registering nothing', async () => {
    const file = await writeNdjson(join(dir, 'orders.ndjson'), orders(3));
    await importFiles(strata, { table: 'orders', files: [file], schema: ORDER_SCHEMA });
    const text = await writeNdjson(join(dir, 'text.ndjson'), [{ order_id: 'x', ts: '2026-11-25T00:00:00Z', customer: 'c', quantity: 'many' }]);

    const result = await importFiles(strata, { table: 'orders', files: [text] });

    expect(result.files[0]!.error).toEqual({
      code: 'malformed_input',
      message: 'text.ndjson line 1: field "quantity": expected a 32-bit integer, got the string "many"',
    });
    expect((await strata.catalog.table('orders'))!.schemaVersions).toHaveLength(1);
  });
});
