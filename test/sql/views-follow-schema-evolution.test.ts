import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SqliteCatalog } from '../../src/catalog/index.js';
import type { FieldSpec } from '../../src/config/index.js';
import type { LocalObjectStore } from '../../src/lake/index.js';
import { SqlEngine } from '../../src/sql/index.js';
import { CLICK_FIELDS, clickRows, openLake, writeParquet } from '../fixtures/lake.js';
import { removeDir, tempDir } from '../fixtures/strata.js';

describe('SQL views across schema versions', () => {
  let dir: string;
  let catalog: SqliteCatalog;
  let store: LocalObjectStore;
  let engine: SqlEngine;

  beforeEach(async () => {
    dir = await tempDir();
    let lakeDir: string;
    ({ catalog, store, lakeDir } = await openLake(dir));
    engine = await SqlEngine.open({ catalog, store, lakeDir, threads: 1, memoryLimit: '512MB' });
  });
  afterEach(async () => {
    await engine.close();
    await catalog.close();
    await removeDir(dir);
  });

  it('reads a file written before a column was added with NULL in that column', async () => {
    await catalog.ensureTable('clicks', 'raw', CLICK_FIELDS);
    const old = await writeParquet(store, 'raw/clicks/dt=2026-11-25/0-1-2.parquet', clickRows(0, 1, 2));
    await catalog.commitDelivery('clicks', 0, 1, 2, [old]);
    expect((await engine.queryAll('SELECT count(*) AS n FROM clicks')).rows).toEqual([{ n: '2' }]);

    const v2 = await catalog.ensureTable('clicks', 'raw', [...CLICK_FIELDS, { name: 'referrer', type: 'string', nullable: true }]);
    expect(v2.version).toBe(2);
    const current = await writeParquet(
      store,
      'raw/clicks/dt=2026-11-25/0-3-3.parquet',
      `SELECT * EXCLUDE (__shard, __seq), 'search' AS referrer, __shard, __seq FROM (${clickRows(0, 3, 1)})`,
    );
    await catalog.commitDelivery('clicks', 0, 3, 3, [current]);

    const answer = await engine.queryAll('SELECT event_id, referrer, __seq FROM clicks ORDER BY __seq');
    expect(answer.columns).toEqual([
      { name: 'event_id', type: 'VARCHAR' },
      { name: 'referrer', type: 'VARCHAR' },
      { name: '__seq', type: 'BIGINT' },
    ]);
    expect(answer.rows).toEqual([
      { event_id: 'e1', referrer: null, __seq: '1' },
      { event_id: 'e2', referrer: null, __seq: '2' },
      { event_id: 'e3', referrer: 'search', __seq: '3' },
    ]);
  });

  it('reads a widened column with its current type in old files too', async () => {
    const v1: FieldSpec[] = [
      { name: 'id', type: 'string', nullable: false },
      { name: 'qty', type: 'int', nullable: false },
    ];
    await catalog.ensureTable('orders', 'imported', v1);
    const old = await writeParquet(store, 'imported/orders/dt=2026-11-25/a.parquet', `SELECT 'o1' AS id, 7::INTEGER AS qty`);
    await catalog.commitImport('orders', 'hash-a', 'a.csv', [old]);
    await catalog.ensureTable('orders', 'imported', [
      { name: 'id', type: 'string', nullable: false },
      { name: 'qty', type: 'bigint', nullable: false },
    ]);
    const big = await writeParquet(store, 'imported/orders/dt=2026-11-26/b.parquet', `SELECT 'o2' AS id, 9007199254740993::BIGINT AS qty`);
    await catalog.commitImport('orders', 'hash-b', 'b.csv', [big]);

    const answer = await engine.queryAll('SELECT id, qty, typeof(qty) AS t FROM orders ORDER BY id');
    expect(answer.columns[1]).toEqual({ name: 'qty', type: 'BIGINT' });
    expect(answer.rows).toEqual([
      { id: 'o1', qty: '7', t: 'BIGINT' },
      { id: 'o2', qty: '9007199254740993', t: 'BIGINT' },
    ]);
  });

  it('reads each file by the columns it holds, whatever schema version it was registered under', async () => {
    await catalog.ensureTable('clicks', 'raw', [...CLICK_FIELDS, { name: 'referrer', type: 'string', nullable: true }]);
    // Written with the older columns, but registered under version 2, whose columns include `referrer`.
    const file = await writeParquet(store, 'raw/clicks/dt=2026-11-25/0-1-2.parquet', clickRows(0, 1, 2));
    await catalog.commitDelivery('clicks', 0, 1, 2, [file]);
    const answer = await engine.queryAll('SELECT count(*) AS n, count(referrer) AS referred FROM clicks');
    expect(answer.rows).toEqual([{ n: '2', referred: '0' }]);
  });

  it('keeps the other tables queryable when a registered file of one table is missing', async () => {
    await catalog.ensureTable('clicks', 'raw', CLICK_FIELDS);
    await catalog.ensureTable('orders', 'imported', [{ name: 'id', type: 'string', nullable: false }]);
    const order = await writeParquet(store, 'imported/orders/dt=2026-11-25/a.parquet', `SELECT 'o1' AS id`);
    await catalog.commitImport('orders', 'hash-a', 'a.csv', [order]);
    await catalog.commitDelivery('clicks', 0, 1, 2, [
      { partition: '2026-11-25', key: 'raw/clicks/dt=2026-11-25/0-1-2.parquet', rows: 2, bytes: 100, minTime: null, maxTime: null },
    ]);
    expect((await engine.queryAll('SELECT id FROM orders')).rows).toEqual([{ id: 'o1' }]);
    await expect(engine.queryAll('SELECT count(*) FROM clicks')).rejects.toThrow(/table "clicks" cannot be read: .*0-1-2\.parquet/);
  });
});
