import { copyFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SqliteCatalog } from '../../src/catalog/index.js';
import type { LocalObjectStore } from '../../src/lake/index.js';
import { SqlEngine } from '../../src/sql/index.js';
import { CLICK_FIELDS, clickRows, openLake, writeParquet } from '../fixtures/lake.js';
import { removeDir, tempDir } from '../fixtures/strata.js';

describe('SQL views over the lake', () => {
  let dir: string;
  let catalog: SqliteCatalog;
  let store: LocalObjectStore;
  let engine: SqlEngine;

  beforeEach(async () => {
    dir = await tempDir();
    let lakeDir: string;
    ({ catalog, store, lakeDir } = await openLake(dir));
    await catalog.ensureTable('clicks', 'raw', CLICK_FIELDS);
    engine = await SqlEngine.open({ catalog, store, lakeDir, threads: 1, memoryLimit: '512MB' });
  });
  afterEach(async () => {
    await engine.close();
    await catalog.close();
    await removeDir(dir);
  });

  it('answers rows of the registered chunks with their types, timestamps as ISO and BIGINT as strings', async () => {
    const file = await writeParquet(store, 'raw/clicks/dt=2026-11-25/0-1-3.parquet', clickRows(0, 1, 3));
    await catalog.commitDelivery('clicks', 0, 1, 3, [file]);
    const answer = await engine.queryAll('SELECT * FROM clicks ORDER BY __seq');
    expect(answer.columns).toEqual([
      { name: 'event_id', type: 'VARCHAR' },
      { name: 'ts', type: 'TIMESTAMP' },
      { name: 'user_id', type: 'VARCHAR' },
      { name: 'page', type: 'VARCHAR' },
      { name: 'amount', type: 'DOUBLE' },
      { name: '__shard', type: 'INTEGER' },
      { name: '__seq', type: 'BIGINT' },
      { name: 'dt', type: 'VARCHAR' },
    ]);
    expect(answer.rows).toEqual([
      { event_id: 'e1', ts: '2026-11-25T10:00:00.000Z', user_id: 'u0', page: '/p0', amount: 0, __shard: 0, __seq: '1', dt: '2026-11-25' },
      { event_id: 'e2', ts: '2026-11-25T10:00:01.000Z', user_id: 'u1', page: '/p1', amount: null, __shard: 0, __seq: '2', dt: '2026-11-25' },
      { event_id: 'e3', ts: '2026-11-25T10:00:02.000Z', user_id: 'u2', page: '/p0', amount: 3, __shard: 0, __seq: '3', dt: '2026-11-25' },
    ]);
    const counted = await engine.queryAll('SELECT count(*) AS n, sum(amount) AS total FROM clicks');
    expect(counted.rows).toEqual([{ n: '3', total: 3 }]);
  });

  it('never sees a stray Parquet file in the table folder, only the registered ones', async () => {
    const file = await writeParquet(store, 'raw/clicks/dt=2026-11-25/0-1-3.parquet', clickRows(0, 1, 3));
    await catalog.commitDelivery('clicks', 0, 1, 3, [file]);
    await copyFile(store.location(file.key), store.location('raw/clicks/dt=2026-11-25/stray.parquet'));
    await writeParquet(store, 'raw/clicks/dt=2026-11-26/0-4-9.parquet', clickRows(0, 4, 6, '2026-11-26'));
    const answer = await engine.queryAll('SELECT count(*) AS n, count(DISTINCT dt) AS days FROM clicks');
    expect(answer.rows).toEqual([{ n: '3', days: '1' }]);
  });

  it('sees a chunk as soon as it is registered', async () => {
    expect((await engine.queryAll('SELECT count(*) AS n FROM clicks')).rows).toEqual([{ n: '0' }]);
    const first = await writeParquet(store, 'raw/clicks/dt=2026-11-25/0-1-3.parquet', clickRows(0, 1, 3));
    await catalog.commitDelivery('clicks', 0, 1, 3, [first]);
    expect((await engine.queryAll('SELECT count(*) AS n FROM clicks')).rows).toEqual([{ n: '3' }]);
    const second = await writeParquet(store, 'raw/clicks/dt=2026-11-26/1-1-4.parquet', clickRows(1, 1, 4, '2026-11-26'));
    await catalog.commitDelivery('clicks', 1, 1, 4, [second]);
    const answer = await engine.queryAll('SELECT dt, __shard, count(*) AS n FROM clicks GROUP BY ALL ORDER BY dt');
    expect(answer.rows).toEqual([
      { dt: '2026-11-25', __shard: 0, n: '3' },
      { dt: '2026-11-26', __shard: 1, n: '4' },
    ]);
  });

  it('answers an empty table with its columns and types and no rows', async () => {
    const answer = await engine.queryAll('SELECT * FROM clicks');
    expect(answer.rows).toEqual([]);
    expect(answer.columns.map((column) => `${column.name} ${column.type}`)).toEqual([
      'event_id VARCHAR',
      'ts TIMESTAMP',
      'user_id VARCHAR',
      'page VARCHAR',
      'amount DOUBLE',
      '__shard INTEGER',
      '__seq BIGINT',
      'dt VARCHAR',
    ]);
    await catalog.ensureTable('imports', 'imported', [{ name: 'id', type: 'bigint', nullable: false }]);
    const imported = await engine.queryAll('SELECT * FROM imports');
    expect(imported.columns).toEqual([
      { name: 'id', type: 'BIGINT' },
      { name: 'dt', type: 'VARCHAR' },
    ]);
  });

  it('reads the __unknown__ partition as text beside dated ones', async () => {
    const dated = await writeParquet(store, 'raw/clicks/dt=2026-11-25/0-1-2.parquet', clickRows(0, 1, 2));
    const unknown = await writeParquet(
      store,
      'raw/clicks/dt=__unknown__/0-1-2.parquet',
      `SELECT * REPLACE (NULL::TIMESTAMP AS ts) FROM (${clickRows(0, 3, 1)})`,
    );
    await catalog.commitDelivery('clicks', 0, 1, 3, [dated, unknown]);
    const answer = await engine.queryAll('SELECT dt, count(*) AS n FROM clicks GROUP BY dt ORDER BY dt');
    expect(answer.rows).toEqual([
      { dt: '2026-11-25', n: '2' },
      { dt: '__unknown__', n: '1' },
    ]);
  });
});
