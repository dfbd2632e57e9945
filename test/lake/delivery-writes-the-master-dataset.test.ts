import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { clicksConfig, postRecords, removeDir, startInProcess, tempDir, waitForDelivery, independentQuery, type RunningStrata } from '../fixtures/strata.js';

describe('delivery into the master dataset', () => {
  let dir: string;
  let server: RunningStrata;
  afterEach(async () => {
    await server.close();
    await removeDir(dir);
  });

  it('seals the log into hive-partitioned zstd Parquet that plain DuckDB reads, every record exactly once', async () => {
    dir = await tempDir();
    server = await startInProcess(clicksConfig({ delivery: { maxSeconds: 0.2 } }), dir);
    const events = Array.from({ length: 300 }, (_, i) => ({
      event_id: `e${i}`,
      ts: i % 3 === 0 ? '2026-11-24T23:59:59.999Z' : '2026-11-25T00:00:00.000Z',
      user_id: `u${i % 11}`,
      page: `/p${i % 4}`,
      amount: i % 5 === 0 ? null : i / 4,
    }));
    for (let i = 0; i < 300; i += 100) {
      const answer = await postRecords(server.url, 'clicks', JSON.stringify(events.slice(i, i + 100)));
      expect(answer.status).toBe(200);
    }
    await waitForDelivery(server);
    const lake = join(dir, 'lake', 'raw', 'clicks');
    expect((await readdir(lake)).sort()).toEqual(['dt=2026-11-24', 'dt=2026-11-25']);
    const files = await readdir(join(lake, 'dt=2026-11-25'));
    expect(files.every((name) => /^\d-\d+-\d+\.parquet$/.test(name))).toBe(true);

    const glob = join(lake, '*', '*.parquet');
    const rows = await independentQuery(
      `SELECT dt, count(*)::INTEGER AS n, count(DISTINCT event_id)::INTEGER AS ids, count(amount)::INTEGER AS amounts
         FROM read_parquet('${glob}', hive_partitioning = true) GROUP BY dt ORDER BY dt`,
    );
    expect(rows).toEqual([
      { dt: '2026-11-24', n: 100, ids: 100, amounts: 80 },
      { dt: '2026-11-25', n: 200, ids: 200, amounts: 160 },
    ]);
    // Every row carries its offset, and the offsets are exactly the log's.
    const offsets = await independentQuery(
      `SELECT __shard, min(__seq)::INTEGER AS lo, max(__seq)::INTEGER AS hi, count(*)::INTEGER AS n FROM read_parquet('${glob}') GROUP BY __shard ORDER BY __shard`,
    );
    for (const row of offsets) {
      expect(row.lo).toBe(1);
      expect(row.hi).toBe(row.n);
      expect(row.hi).toBe(server.strata.stream.shards('clicks')[row.__shard as number]!.lastSeq);
    }
    const codec = await independentQuery(`SELECT DISTINCT compression FROM parquet_metadata('${glob}')`);
    expect(codec).toEqual([{ compression: 'ZSTD' }]);

    const chunks = await server.strata.catalog.chunks('clicks');
    expect(chunks.reduce((sum, chunk) => sum + chunk.rows, 0)).toBe(300);
    expect(chunks.every((chunk) => chunk.key.endsWith(`/${chunk.shard}-${chunk.firstSeq}-${chunk.lastSeq}.parquet`))).toBe(true);
  });
});
