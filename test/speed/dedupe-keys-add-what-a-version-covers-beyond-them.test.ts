import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DedupeKeys, type CoveredSince } from '../../src/speed/dedupe-keys.js';

/**
 * The speed layer's copies when a batch version covers records it never applied (it was behind W): the copies
 * of the days it holds must take those records in, or a retry of one of them would count twice. The lake is a
 * table here, and W a variable, as the speed layer's `coveredDay` reads them from chunks.
 */
describe("the speed layer's de-duplication keys", () => {
  let instance: DuckDBInstance;
  let connection: DuckDBConnection;
  beforeAll(async () => {
    instance = await DuckDBInstance.create(':memory:');
    connection = await instance.connect();
    await connection.run(`SET TimeZone = 'UTC'`);
    await connection.run(`CREATE TABLE lake (event_id VARCHAR, ts TIMESTAMP, "__shard" INTEGER, "__seq" BIGINT)`);
  });
  afterAll(() => {
    connection.closeSync();
    instance.closeSync();
  });

  it('take in the records a version covers beyond what the speed layer applied, and catch their retries', async () => {
    let watermark = [0, 0];
    const reads: (CoveredSince | undefined)[] = [];
    const coveredDay = async (day: string, since?: CoveredSince) => {
      reads.push(since);
      if (watermark.every((w) => w === 0)) return null;
      const past = since ? ` AND "__seq" > ([${since.seq.join(', ')}]::BIGINT[])["__shard" + 1]` : '';
      return `SELECT * FROM lake WHERE CAST(ts AS DATE) = DATE '${day}' AND "__seq" <= ([${watermark.join(', ')}]::BIGINT[])["__shard" + 1]${past}`;
    };
    const keys = new DedupeKeys(connection, { keys: ['event_id'], eventTime: 'ts', within: '1h', withinMs: 3_600_000 }, coveredDay);
    const record = (id: string, minute: number, shard: number, seq: number) => ({ id, ts: `2026-11-25 10:${String(minute).padStart(2, '0')}:00`, shard, seq });
    type Row = ReturnType<typeof record>;
    const microBatch = async (rows: Row[]) => {
      await connection.run(
        `CREATE OR REPLACE TEMP TABLE micro AS SELECT * FROM (VALUES ${rows.map((r) => `('${r.id}', TIMESTAMP '${r.ts}', ${r.shard}, ${r.seq}::BIGINT)`).join(', ')}) AS t(event_id, ts, "__shard", "__seq")`,
      );
      const kept = await connection.runAndReadAll(`SELECT event_id FROM (${await keys.keep('micro', false)}) ORDER BY event_id`);
      return kept.getRows().map((row) => String(row[0]));
    };
    const deliver = async (rows: Row[]) => {
      for (const r of rows) await connection.run(`INSERT INTO lake VALUES ('${r.id}', TIMESTAMP '${r.ts}', ${r.shard}, ${r.seq})`);
    };

    // The speed layer applies a and b (the day is loaded: no version yet, so nothing covered).
    const a = record('a', 0, 0, 1);
    const b = record('b', 1, 1, 1);
    expect(await microBatch([a, b])).toEqual(['a', 'b']);
    // c (shard 0) and d (shard 1) are delivered and covered by a version before the speed layer reads them.
    const c = record('c', 2, 0, 2);
    const d = record('d', 3, 1, 2);
    await deliver([a, b, c, d]);
    watermark = [2, 2];
    expect(await keys.cover(watermark)).toEqual([]);
    reads.length = 0;
    await keys.addCovered({ seq: [1, 1], importChunk: 0 });
    // The one day held is read again, past the seqs applied only.
    expect(reads).toEqual([{ seq: [1, 1], importChunk: 0 }]);

    // The speed layer resumes after W: retries of every covered record give way, a new record stays.
    expect(await microBatch([record('c', 2, 1, 3), record('d', 3, 0, 3), record('a', 0, 1, 4), record('e', 4, 0, 4)])).toEqual(['e']);
  });
});
