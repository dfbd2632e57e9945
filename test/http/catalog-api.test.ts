import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clickRows, writeParquet } from '../fixtures/lake.js';
import { clicksConfig, removeDir, startInProcess, tempDir, type RunningStrata } from '../fixtures/strata.js';

describe('GET /v1/catalog/tables', () => {
  let dir: string;
  let server: RunningStrata;

  beforeAll(async () => {
    dir = await tempDir();
    server = await startInProcess(clicksConfig({}, 2), dir);
    const { catalog, store } = server.strata;
    const day1 = await writeParquet(store, 'raw/clicks/dt=2026-11-25/0-1-3.parquet', clickRows(0, 1, 3));
    const day2 = await writeParquet(store, 'raw/clicks/dt=2026-11-26/0-1-3.parquet', clickRows(0, 1, 0, '2026-11-26'));
    await catalog.commitDelivery('clicks', 0, 1, 3, [day1, { ...day2, rows: 0 }]);
    const more = await writeParquet(store, 'raw/clicks/dt=2026-11-25/1-1-2.parquet', clickRows(1, 1, 2));
    await catalog.commitDelivery('clicks', 1, 1, 2, [{ ...more, minTime: '2026-11-25T10:00:00.000Z', maxTime: '2026-11-25T10:00:01.000Z' }]);
    await catalog.ensureTable('orders', 'imported', [{ name: 'id', type: 'int', nullable: false }]);
    await catalog.ensureTable('orders', 'imported', [
      { name: 'id', type: 'bigint', nullable: false },
      { name: 'note', type: 'string', nullable: true },
    ]);
  });
  afterAll(async () => {
    await server.close();
    await removeDir(dir);
  });

  it('lists every table with its current columns and what the lake holds', async () => {
    const response = await fetch(`${server.url}/v1/catalog/tables`);
    expect(response.status).toBe(200);
    const { tables } = (await response.json()) as { tables: Record<string, unknown>[] };
    expect(tables.map((table) => table.name)).toEqual(['clicks', 'orders']);
    expect(tables[0]).toMatchObject({
      name: 'clicks',
      kind: 'raw',
      schemaVersion: 1,
      chunks: 3,
      rows: 5,
      columns: expect.arrayContaining([{ name: 'amount', type: 'double', nullable: true }]),
    });
    expect(tables[1]).toMatchObject({ name: 'orders', kind: 'imported', schemaVersion: 2, chunks: 0, rows: 0, bytes: 0 });
  });

  it('details a table: schema versions with their changes, partitions and chunks', async () => {
    const orders = (await (await fetch(`${server.url}/v1/catalog/tables/orders`)).json()) as Record<string, unknown>;
    expect(orders.schemaVersions).toEqual([
      { version: 1, columns: [{ name: 'id', type: 'int', nullable: false }], change: null, createdAt: expect.any(String) },
      {
        version: 2,
        columns: [
          { name: 'id', type: 'bigint', nullable: false },
          { name: 'note', type: 'string', nullable: true },
        ],
        change: { added: ['note'], widened: [{ column: 'id', from: 'int', to: 'bigint' }], relaxed: [] },
        createdAt: expect.any(String),
      },
    ]);

    const clicks = (await (await fetch(`${server.url}/v1/catalog/tables/clicks`)).json()) as {
      partitions: unknown[];
      chunkList: Record<string, unknown>[];
    };
    expect(clicks.partitions).toEqual([
      { partition: '2026-11-25', chunks: 2, rows: 5, bytes: expect.any(Number), minTime: '2026-11-25T10:00:00.000Z', maxTime: '2026-11-25T10:00:01.000Z' },
      { partition: '2026-11-26', chunks: 1, rows: 0, bytes: expect.any(Number), minTime: null, maxTime: null },
    ]);
    expect(clicks.chunkList).toHaveLength(3);
    expect(clicks.chunkList[2]).toMatchObject({
      key: 'raw/clicks/dt=2026-11-25/1-1-2.parquet',
      partition: '2026-11-25',
      shard: '1',
      firstSeq: '1',
      lastSeq: '2',
      rows: 2,
      schemaVersion: 1,
      source: 'delivery',
    });
  });

  it('answers 404 for an unknown table', async () => {
    const response = await fetch(`${server.url}/v1/catalog/tables/nope`);
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ error: { code: 'not_found', message: 'unknown table "nope"' } });
  });
});
