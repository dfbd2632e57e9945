/**
 * Ad-hoc SQL (the Athena role): what keeping the views in step with the catalog costs, over a lake of many
 * chunks (delivery registers one per shard every few seconds, so tables gather thousands).
 *
 * 1. Cold refresh: the first query's view build, which reads every file's Parquet footer once.
 * 2. Unchanged: the check every query makes (the catalog's per-table state) when nothing was registered.
 * 3. One new chunk: a query right after a chunk was registered (one footer read, the view replaced).
 * 4. Queries over the view: a count over all files, and one pruned to a day by `dt`; beside them the same
 *    counts through a view with `union_by_name=true` over the same files, which reads every footer at each
 *    query's bind, even of the files `dt` prunes.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { SqliteCatalog } from '../src/catalog/index.js';
import { LocalObjectStore, parquetCopyOptions } from '../src/lake/index.js';
import { SqlEngine } from '../src/sql/index.js';
import { sqlString } from '../src/util/duckdb.js';
import { type Benchmark, numberFlag, round } from './lib/benchmark.js';
import { onCleanup } from './lib/cleanup.js';

const FIELDS = [
  { name: 'event_id', type: 'string', nullable: false },
  { name: 'ts', type: 'timestamp', nullable: false },
  { name: 'user_id', type: 'string', nullable: false },
  { name: 'page', type: 'string', nullable: false },
  { name: 'amount', type: 'double', nullable: true },
] as const;

const ROWS_PER_CHUNK = 100;

async function timed(action: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await action();
  return performance.now() - started;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function repeat(times: number, action: () => Promise<unknown>): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < times; i++) samples.push(await timed(action));
  return median(samples);
}

const benchmark: Benchmark = {
  name: 'sql',
  summary: 'ad-hoc SQL: view refresh cost and per-query overhead over a lake of many chunks',
  options: {
    'sql-chunks': { type: 'string', description: 'chunk files in the table', default: '1000' },
  },
  async run(values) {
    const chunks = numberFlag(values, 'sql-chunks', 1000, { min: 10, max: 100_000, integer: true });
    const dir = await mkdtemp(join(tmpdir(), 'strata-bench-sql-'));
    const removeDir = onCleanup(() => rm(dir, { recursive: true, force: true }));
    const lakeDir = join(dir, 'lake');
    const store = new LocalObjectStore(lakeDir);
    await store.init();
    const catalog = new SqliteCatalog(join(dir, 'catalog.db'));
    const writer = await DuckDBInstance.create(':memory:');
    const connection = await writer.connect();
    let engine: SqlEngine | undefined;
    try {
      await catalog.ensureTable('clicks', 'raw', FIELDS);
      const days = 28;
      const writeChunk = async (n: number) => {
        const day = `2026-11-${String(1 + (n % days)).padStart(2, '0')}`;
        const first = n * ROWS_PER_CHUNK + 1;
        const key = `raw/clicks/dt=${day}/0-${first}-${first + ROWS_PER_CHUNK - 1}.parquet`;
        const path = store.location(key);
        await mkdir(dirname(path), { recursive: true });
        await connection.run(
          `COPY (SELECT 'e' || i AS event_id, TIMESTAMP '${day} 10:00:00' + to_seconds(i) AS ts, 'u' || (i % 97) AS user_id,
                        '/p' || (i % 13) AS page, i * 0.5 AS amount, 0::INTEGER AS __shard, (${first} + i)::BIGINT AS __seq
                   FROM range(${ROWS_PER_CHUNK}) t(i)) TO ${sqlString(path)} (${parquetCopyOptions(null)})`,
        );
        await catalog.commitDelivery('clicks', 0, first, first + ROWS_PER_CHUNK - 1, [
          { partition: day, key, rows: ROWS_PER_CHUNK, bytes: 0, minTime: null, maxTime: null },
        ]);
      };
      for (let n = 0; n < chunks; n++) await writeChunk(n);

      engine = await SqlEngine.open({ catalog, store, lakeDir, threads: 2, memoryLimit: '2GB' });
      const sql = engine;
      const cold = await timed(() => sql.refreshViews());
      const unchanged = await repeat(20, () => sql.queryAll('SELECT 1'));
      const catalogCheck = await repeat(20, () => catalog.tables());
      let next = chunks;
      const refreshes: number[] = [];
      for (let i = 0; i < 10; i++) {
        await writeChunk(next++);
        refreshes.push(await timed(() => sql.refreshViews()));
      }
      const oneNew = median(refreshes);
      const count = await repeat(10, () => sql.queryAll('SELECT count(*) FROM clicks'));
      const oneDay = await repeat(10, () => sql.queryAll("SELECT count(*) FROM clicks WHERE dt = '2026-11-03'"));

      const files = (await catalog.chunks('clicks')).map((chunk) => sqlString(store.location(chunk.key)));
      await connection.run(`CREATE VIEW by_name AS SELECT * FROM read_parquet([${files.join(', ')}], hive_partitioning = true, union_by_name = true)`);
      const unionByName = await repeat(10, () => connection.runAndReadAll('SELECT count(*) FROM by_name'));
      const unionByNameDay = await repeat(10, () => connection.runAndReadAll("SELECT count(*) FROM by_name WHERE dt = '2026-11-03'"));

      const ms = (n: number) => `${n.toFixed(1)} ms`;
      console.log(`\nsql: views over ${chunks.toLocaleString('en-US')} chunk files (${ROWS_PER_CHUNK} rows each, ${days} days)`);
      console.log(`  cold refresh (every footer read once, view built)  ${ms(cold)}`);
      console.log(`  query overhead, catalog unchanged (SELECT 1)       ${ms(unchanged)}  (catalog check alone ${ms(catalogCheck)})`);
      console.log(`  refresh after one new chunk                        ${ms(oneNew)}`);
      console.log(`  count(*) over all files                            ${ms(count)}`);
      console.log(`  count(*) over one day (dt prunes files)            ${ms(oneDay)}`);
      console.log(`  the same through union_by_name=true, for contrast  ${ms(unionByName)}, one day ${ms(unionByNameDay)}`);
      return {
        chunks,
        coldRefreshMs: round(cold),
        unchangedQueryMs: round(unchanged),
        catalogCheckMs: round(catalogCheck),
        oneNewChunkRefreshMs: round(oneNew),
        countAllMs: round(count),
        countOneDayMs: round(oneDay),
        countUnionByNameMs: round(unionByName),
        countOneDayUnionByNameMs: round(unionByNameDay),
      };
    } finally {
      await engine?.close();
      connection.closeSync();
      writer.closeSync();
      await catalog.close();
      await removeDir();
    }
  },
};

export default benchmark;
