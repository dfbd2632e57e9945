import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SqliteCatalog } from '../../src/catalog/index.js';
import { QueryError, QueryRefusedError } from '../../src/errors.js';
import { SqlEngine } from '../../src/sql/index.js';
import { CLICK_FIELDS, clickRows, openLake, writeParquet } from '../fixtures/lake.js';
import { removeDir, tempDir } from '../fixtures/strata.js';

describe('the SQL engine runs one read-only query and nothing else', () => {
  let dir: string;
  let catalog: SqliteCatalog;
  let engine: SqlEngine;

  beforeAll(async () => {
    dir = await tempDir();
    const lake = await openLake(dir);
    catalog = lake.catalog;
    await catalog.ensureTable('clicks', 'raw', CLICK_FIELDS);
    const file = await writeParquet(lake.store, 'raw/clicks/dt=2026-11-25/0-1-3.parquet', clickRows(0, 1, 3));
    await catalog.commitDelivery('clicks', 0, 1, 3, [file]);
    // A sibling whose name starts like the lake's: the allowed directory must not be a bare string prefix.
    await mkdir(join(dir, 'lake-other'), { recursive: true });
    await writeFile(join(dir, 'lake-other', 'secret.csv'), 'a\n1\n');
    engine = await SqlEngine.open({ catalog, store: lake.store, lakeDir: lake.lakeDir, threads: 1, memoryLimit: '512MB' });
  });
  afterAll(async () => {
    await engine.close();
    await catalog.close();
    await removeDir(dir);
  });

  const refused: [string, RegExp][] = [
    ['DROP TABLE clicks', /DROP statements are refused/],
    ['DROP VIEW clicks', /DROP statements are refused/],
    ["COPY clicks TO '/tmp/x.csv'", /COPY statements are refused/],
    ["COPY (SELECT 1) TO '/tmp/x.parquet' (FORMAT parquet)", /COPY statements are refused/],
    ["ATTACH '/tmp/x.db' AS x", /ATTACH statements are refused/],
    ['INSTALL httpfs', /INSTALL statements are refused/],
    ['LOAD json', /LOAD statements are refused/],
    ['SET threads = 1', /SET statements are refused/],
    ['RESET threads', /RESET statements are refused/],
    ['PRAGMA version', /PRAGMA statements are refused/],
    ['PRAGMA enable_profiling', /PRAGMA statements are refused/],
    ['CREATE TABLE t AS SELECT 1', /CREATE statements are refused/],
    ['CREATE OR REPLACE VIEW clicks AS SELECT 1', /CREATE statements are refused/],
    ['CREATE MACRO m() AS 1', /CREATE statements are refused/],
    ['INSERT INTO clicks VALUES (1)', /INSERT statements are refused/],
    ['EXPLAIN SELECT * FROM clicks', /EXPLAIN statements are refused/],
    ['EXPLAIN ANALYZE SELECT * FROM clicks', /EXPLAIN statements are refused/],
    ['CALL pragma_version()', /CALL statements are refused/],
    ['CHECKPOINT', /CHECKPOINT statements are refused/],
    ["EXPORT DATABASE '/tmp/y'", /EXPORT statements are refused/],
    ['BEGIN', /BEGIN statements are refused/],
    ['USE memory', /USE statements are refused/],
    ['/* hidden */ -- still\n  DROP TABLE clicks', /DROP statements are refused/],
    ['SELECT 1; SELECT 2', /one statement per query, got 2/],
    ['SELECT 1; DROP TABLE clicks', /one statement per query, got 2/],
    ["SELECT * FROM read_text('/etc/passwd')", /may read only the lake's tables: Permission Error/],
    ["SELECT * FROM read_csv('/etc/passwd')", /may read only the lake's tables: Permission Error/],
    ["SELECT * FROM glob('/etc/*')", /Permission Error/],
    ["SELECT * FROM read_csv('LAKE_OTHER/secret.csv')", /Permission Error/],
    ["SELECT * FROM read_text('CATALOG')", /Permission Error/],
    ["SELECT * FROM read_text('THE_LAKE/../catalog.db')", /Permission Error/],
    ["SELECT * FROM read_text('THE_LAKE/raw/../../catalog.db')", /Permission Error/],
    ["SELECT * FROM read_json('http://127.0.0.1:9/x.json')", /Permission Error|refused|disabled/],
  ];

  it.each(refused)('refuses %j', async (sql, message) => {
    const text = sql
      .replace('LAKE_OTHER', join(dir, 'lake-other'))
      .replace('CATALOG', join(dir, 'catalog.db'))
      .replace('THE_LAKE', join(dir, 'lake'));
    const error = await engine.queryAll(text).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QueryRefusedError);
    expect((error as QueryRefusedError).code).toBe('query_refused');
    expect((error as Error).message).toMatch(message);
  });

  it('keeps the lake and its views untouched after all of that', async () => {
    expect((await engine.queryAll('SELECT count(*) AS n FROM clicks')).rows).toEqual([{ n: '3' }]);
    expect((await engine.queryAll("SELECT current_setting('threads') AS t")).rows).toEqual([{ t: '1' }]);
  });

  const accepted: [string, number][] = [
    ['SELECT * FROM clicks', 3],
    ['FROM clicks', 3],
    ['WITH c AS (SELECT * FROM clicks) SELECT count(*) FROM c', 1],
    ['VALUES (1), (2)', 2],
    ['DESCRIBE clicks', 8],
    ['SUMMARIZE clicks', 8],
    ['SHOW TABLES', 1],
    ['SELECT 1;', 1],
    ['  -- a comment\nSELECT 1', 1],
    ['(SELECT 1) UNION ALL (SELECT 2)', 2],
    ["SELECT * FROM read_parquet('LAKE/raw/clicks/*/*.parquet')", 3],
  ];

  it.each(accepted)('runs %j', async (sql, rows) => {
    const answer = await engine.queryAll(sql.replace('LAKE', join(dir, 'lake')));
    expect(answer.rows).toHaveLength(rows);
  });

  it('answers a syntax error, an unknown table and a failed cast with DuckDB’s message', async () => {
    await expect(engine.queryAll('SELEC 1')).rejects.toThrow(QueryError);
    await expect(engine.queryAll('SELEC 1')).rejects.toThrow(/syntax error at or near "SELEC"/);
    await expect(engine.queryAll('SELECT * FROM nope')).rejects.toThrow(/Table with name nope does not exist/);
    await expect(engine.queryAll("SELECT 'x'::INTEGER")).rejects.toThrow(/Conversion Error/);
    await expect(engine.queryAll('')).rejects.toThrow(/no SQL statement/);
    await expect(engine.queryAll(' -- only a comment\n;')).rejects.toThrow(/no SQL statement/);
    const error = await engine.queryAll('SELECT nope FROM clicks').catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'query_failed', message: expect.stringMatching(/Binder Error.*nope/s) });
  });
});
