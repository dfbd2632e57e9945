import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { importFiles } from '../../src/ingest/index.js';
import type { Strata } from '../../src/strata.js';
import { clicksConfig, removeDir, tempDir } from '../fixtures/strata.js';
import { lakeFiles, openStrata, ORDER_SCHEMA, orders, writeCsv, writeNdjson, writeParquetFile } from './support.js';

const HEADER = 'order_id,ts,customer,quantity,amount';
const good = (n: number) => `o${n},2026-11-25T0${n % 10}:00:00Z,c${n},${n},${n}.5`;

describe('a malformed file names its line and imports nothing of itself', () => {
  let dir: string;
  let strata: Strata;
  beforeEach(async () => {
    dir = await tempDir('strata-import-bad-');
    strata = await openStrata(clicksConfig(), join(dir, 'data'));
    // Something already in the table, which a failed file must leave as it is.
    await importFiles(strata, { table: 'orders', files: [await writeNdjson(join(dir, 'seed.ndjson'), orders(10))], schema: ORDER_SCHEMA, eventTime: 'ts' });
  });
  afterEach(async () => {
    await strata.close();
    await removeDir(dir);
  });

  let calls = 0;
  /** Imports `bad` and a good file after it; checks only the good file's rows were added. */
  async function importBad(bad: string): Promise<string> {
    const chunksBefore = await strata.catalog.chunks('orders');
    const filesBefore = await lakeFiles(join(dir, 'data'));
    const after = await writeCsv(join(dir, `after-${++calls}.csv`), orders(2, 500 + calls * 10) as unknown as Record<string, unknown>[]);

    const result = await importFiles(strata, { table: 'orders', files: [bad, after], schema: ORDER_SCHEMA, eventTime: 'ts' });

    expect(result.files.map((file) => file.state)).toEqual(['failed', 'succeeded']);
    expect(result.files[0]!.rows).toBe(0);
    const added = (await strata.catalog.chunks('orders')).slice(chunksBefore.length);
    expect(added.every((chunk) => chunk.source === `import:${after}`)).toBe(true);
    expect((await strata.catalog.chunks('orders')).slice(0, chunksBefore.length)).toEqual(chunksBefore);
    expect(await lakeFiles(join(dir, 'data'))).toEqual([...filesBefore, ...added.map((chunk) => chunk.key)].sort());
    expect(await strata.catalog.hasImport('orders', result.files[0]!.contentHash!)).toBe(false);
    return result.files[0]!.error!.message;
  }

  const csv = async (lines: string[]) => {
    const path = join(dir, 'bad.csv');
    await writeFile(path, [HEADER, ...lines].join('\n') + '\n');
    return path;
  };

  it('CSV: a line with too many values', async () => {
    const message = await importBad(await csv([good(1), good(2), `${good(3)},extra`, good(4)]));
    expect(message).toBe('bad.csv line 4: expected 5 values, found 6');
  });

  it('CSV: an unterminated quote', async () => {
    const message = await importBad(await csv([good(1), 'o2,2026-11-25T02:00:00Z,"c2,2,2.5', good(3)]));
    expect(message).toBe('bad.csv line 3: a quoted value is not terminated');
  });

  it('CSV: a value that does not convert to the column type', async () => {
    const message = await importBad(await csv([good(1), good(2), good(3), good(4), 'o5,2026-11-25T05:00:00Z,c5,5,abc']));
    expect(message).toBe('bad.csv line 6: field "amount": expected a number, got "abc"');
  });

  it('CSV: an integer with decimals, which DuckDB alone would round', async () => {
    const message = await importBad(await csv([good(1), 'o2,2026-11-25T02:00:00Z,c2,2.5,2.5', good(3)]));
    expect(message).toBe('bad.csv line 3: field "quantity": expected a 32-bit integer, got "2.5"');
  });

  it('CSV: a missing required value', async () => {
    const message = await importBad(await csv([good(1), good(2), 'o3,2026-11-25T03:00:00Z,,3,3.5']));
    expect(message).toBe('bad.csv line 4: field "customer": must not be null');
  });

  it('CSV: a header naming a column the schema lacks', async () => {
    const path = join(dir, 'bad.csv');
    await writeFile(path, `${HEADER},colour\n${good(1)},red\n`);
    expect(await importBad(path)).toBe('bad.csv line 1: column "colour" is not in the schema of table "orders"');
  });

  it('NDJSON: a line that is not JSON, and a field the validator refuses', async () => {
    const lines = orders(20, 100).map((order) => JSON.stringify(order));
    lines[2] = '{"order_id": "o102", oops';
    const broken = join(dir, 'broken.ndjson');
    await writeFile(broken, lines.join('\n') + '\n');
    expect(await importBad(broken)).toMatch(/^broken\.ndjson line 3: not valid JSON: /);

    lines[2] = JSON.stringify(orders(1, 102)[0]);
    lines[16] = JSON.stringify({ ...orders(1, 116)[0], amount: 'lots' });
    const events = join(dir, 'events.ndjson');
    await writeFile(events, lines.join('\n') + '\n');
    expect(await importBad(events)).toBe('events.ndjson line 17: field "amount": expected a number, got the string "lots"');
  });

  it('Parquet: a value that would lose digits in the declared type names the column and row', async () => {
    const path = await writeParquetFile(
      join(dir, 'bad.parquet'),
      `SELECT 'o' || i AS order_id, TIMESTAMP '2026-11-25 00:00:00' AS ts, 'c' AS customer,
              CASE WHEN i = 7 THEN 2.5 ELSE i END::DOUBLE AS quantity, NULL::DOUBLE AS amount FROM range(10) t(i)`,
    );
    expect(await importBad(path)).toBe('bad.parquet row 8: field "quantity": expected a 32-bit integer, got "2.5" (DOUBLE in the file)');
  });

  it('Parquet: a missing required value', async () => {
    const path = await writeParquetFile(
      join(dir, 'nulls.parquet'),
      `SELECT 'o' || i AS order_id, TIMESTAMP '2026-11-25 00:00:00' AS ts, CASE WHEN i = 3 THEN NULL ELSE 'c' END AS customer,
              i::INTEGER AS quantity FROM range(5) t(i)`,
    );
    expect(await importBad(path)).toBe('nulls.parquet row 4: field "customer": must not be null');
  });
});
