import { pbkdf2 } from 'node:crypto';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SqliteCatalog } from '../../src/catalog/index.js';
import { OverloadedError, QueryTimeoutError } from '../../src/errors.js';
import type { LocalObjectStore } from '../../src/lake/index.js';
import { SqlEngine, type SqlEngineOptions } from '../../src/sql/index.js';
import { QueryRun } from '../../src/sql/sql-engine.js';
import { CLICK_FIELDS, clickRows, openLake, writeParquet } from '../fixtures/lake.js';
import { removeDir, tempDir } from '../fixtures/strata.js';

const SLOW = 'SELECT count(*) AS n FROM range(10000000000) t(x) WHERE hash(x) = 0';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('SQL queries are bounded in time and can be cancelled', () => {
  let dir: string;
  let catalog: SqliteCatalog;
  let store: LocalObjectStore;
  let lakeDir: string;
  let engine: SqlEngine | undefined;

  const open = async (options: Partial<SqlEngineOptions> = {}) =>
    (engine = await SqlEngine.open({ catalog, store, lakeDir, threads: 2, memoryLimit: '512MB', ...options }));

  beforeEach(async () => {
    dir = await tempDir();
    ({ catalog, store, lakeDir } = await openLake(dir));
    await catalog.ensureTable('clicks', 'raw', CLICK_FIELDS);
    const file = await writeParquet(store, 'raw/clicks/dt=2026-11-25/0-1-100.parquet', clickRows(0, 1, 100));
    await catalog.commitDelivery('clicks', 0, 1, 100, [file]);
  });
  afterEach(async () => {
    await engine?.close();
    engine = undefined;
    await catalog.close();
    await removeDir(dir);
  });

  it('cancels a query past the time limit with an error naming the limit, and keeps working', async () => {
    const sql = await open({ timeoutMs: 200, maxConcurrentQueries: 2 });
    const started = Date.now();
    const error = await sql.queryAll(SLOW).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QueryTimeoutError);
    expect(error).toMatchObject({ code: 'query_timeout', timeoutMs: 200, message: expect.stringContaining('200 ms limit') });
    expect(Date.now() - started).toBeLessThan(10_000);
    // More timeouts than query slots: each one must give its slot back.
    for (let i = 0; i < 3; i++) await expect(sql.queryAll(SLOW)).rejects.toThrow(QueryTimeoutError);
    expect((await sql.queryAll('SELECT count(*) AS n FROM clicks')).rows).toEqual([{ n: '100' }]);
  });

  it('fails a streamed answer that outlives the limit instead of ending it early', async () => {
    const sql = await open({ timeoutMs: 300 });
    const stream = await sql.query('SELECT x FROM range(1000000) t(x)');
    let rows = 0;
    const reading = (async () => {
      for await (const batch of stream.batches) {
        rows += batch.length;
        await sleep(100);
      }
    })();
    await expect(reading).rejects.toThrow(QueryTimeoutError);
    expect(rows).toBeGreaterThan(0);
    expect(rows).toBeLessThan(1_000_000);
    expect((await sql.queryAll('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });

  it('cancels a query when its signal aborts', async () => {
    const sql = await open({ timeoutMs: 60_000 });
    const controller = new AbortController();
    const running = sql.queryAll(SLOW, { signal: controller.signal });
    await sleep(100);
    controller.abort(new Error('the client went away'));
    await expect(running).rejects.toThrow('the client went away');
    expect((await sql.queryAll('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);
  });

  it('cancels a query whose DuckDB call was still waiting for a pool thread when its signal aborted', async () => {
    // DuckDB interrupts only a call it is running: one queued behind busy libuv threads missed the interrupt and
    // ran to its end. Here every pool thread is busy hashing when the call is made and when the signal aborts.
    const instance = await DuckDBInstance.create(':memory:', { threads: '1' });
    const controller = new AbortController();
    const run = new QueryRun(60_000, controller.signal, () => undefined);
    try {
      const connection = await run.connect(instance);
      const poolThreads = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
      const hashing = Array.from(
        { length: 2 * poolThreads },
        () => new Promise((resolve, reject) => pbkdf2('password', 'salt', 200_000, 32, 'sha256', (error, key) => (error ? reject(error) : resolve(key)))),
      );
      const running = run.step(() => connection.run(SLOW));
      controller.abort(new Error('the client went away'));
      await expect(running).rejects.toThrow('the client went away');
      await Promise.all(hashing);
      await run.done;
    } finally {
      run.close();
      instance.closeSync();
    }
  });

  it('runs queries side by side, and a view refresh leaves a running query whole', async () => {
    const sql = await open({ timeoutMs: 60_000 });
    const long = sql.queryAll('SELECT count(*) AS n FROM clicks, range(3000000) t(x) WHERE hash(x) % 2 = hash(x) % 2');
    await sleep(50);
    const file = await writeParquet(store, 'raw/clicks/dt=2026-11-26/0-101-150.parquet', clickRows(0, 101, 50, '2026-11-26'));
    await catalog.commitDelivery('clicks', 0, 101, 150, [file]);
    const [short, other] = await Promise.all([
      sql.queryAll('SELECT count(*) AS n FROM clicks'),
      sql.queryAll('SELECT count(DISTINCT dt) AS days FROM clicks'),
    ]);
    expect(short.rows).toEqual([{ n: '150' }]);
    expect(other.rows).toEqual([{ days: '2' }]);
    const n = BigInt((await long).rows[0]!.n as string);
    // Bound before the refresh (100 rows) or after it (150): never a mix, never an error.
    expect([100n * 3_000_000n, 150n * 3_000_000n]).toContain(n);
  });

  it('answers 503-style overload past the bound on open queries, and frees the slot on close', async () => {
    const sql = await open({ maxConcurrentQueries: 1 });
    const stream = await sql.query('SELECT x FROM range(100000) t(x)');
    await expect(sql.queryAll('SELECT 1')).rejects.toThrow(OverloadedError);
    stream.close();
    expect((await sql.queryAll('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });

  it('stops running queries when it closes', async () => {
    const sql = await open({ timeoutMs: 60_000 });
    const running = sql.queryAll(SLOW);
    await sleep(100);
    await sql.close();
    engine = undefined;
    await expect(running).rejects.toThrow('the SQL engine is closing');
  });
});
