import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SqliteCatalog } from '../../src/catalog/index.js';
import { isoTimestamp, SqlEngine } from '../../src/sql/index.js';
import { openLake } from '../fixtures/lake.js';
import { removeDir, tempDir } from '../fixtures/strata.js';

describe('SQL answers render values as JSON, one rule per type', () => {
  let dir: string;
  let catalog: SqliteCatalog;
  let engine: SqlEngine;

  beforeAll(async () => {
    dir = await tempDir();
    const lake = await openLake(dir);
    catalog = lake.catalog;
    engine = await SqlEngine.open({ catalog, store: lake.store, lakeDir: lake.lakeDir, threads: 1, memoryLimit: '512MB' });
  });
  afterAll(async () => {
    await engine.close();
    await catalog.close();
    await removeDir(dir);
  });

  const one = async (expression: string) => {
    const answer = await engine.queryAll(`SELECT ${expression} AS v`);
    return { value: answer.rows[0]!.v, type: answer.columns[0]!.type };
  };

  it.each([
    ["TIMESTAMP '2026-11-25 10:00:00'", '2026-11-25T10:00:00.000Z', 'TIMESTAMP'],
    ["TIMESTAMP '2026-11-25 10:00:00.123'", '2026-11-25T10:00:00.123Z', 'TIMESTAMP'],
    ["TIMESTAMP '2026-11-25 10:00:00.123456'", '2026-11-25T10:00:00.123456Z', 'TIMESTAMP'],
    ["TIMESTAMP '1969-12-31 23:59:59.999999'", '1969-12-31T23:59:59.999999Z', 'TIMESTAMP'],
    ["TIMESTAMPTZ '2026-11-25 12:00:00+02'", '2026-11-25T10:00:00.000Z', 'TIMESTAMP WITH TIME ZONE'],
    ["TIMESTAMP_NS '2026-11-25 10:00:00.123456789'", '2026-11-25T10:00:00.123456789Z', 'TIMESTAMP_NS'],
    ["TIMESTAMP_MS '2026-11-25 10:00:00.5'", '2026-11-25T10:00:00.500Z', 'TIMESTAMP_MS'],
    ["TIMESTAMP_S '2026-11-25 10:00:00'", '2026-11-25T10:00:00.000Z', 'TIMESTAMP_S'],
    ["'infinity'::TIMESTAMP", 'infinity', 'TIMESTAMP'],
    ["DATE '2026-11-25'", '2026-11-25', 'DATE'],
    ["TIME '10:00:01.5'", '10:00:01.5', 'TIME'],
    ['42', 42, 'INTEGER'],
    ['42::BIGINT', '42', 'BIGINT'],
    ['9223372036854775807::BIGINT', '9223372036854775807', 'BIGINT'],
    ['18446744073709551615::UBIGINT', '18446744073709551615', 'UBIGINT'],
    ['170141183460469231731687303715884105727::HUGEINT', '170141183460469231731687303715884105727', 'HUGEINT'],
    ['count(*)', '1', 'BIGINT'],
    ['1.5::DOUBLE', 1.5, 'DOUBLE'],
    ["'NaN'::DOUBLE", 'NaN', 'DOUBLE'],
    ['1.25', 1.25, 'DECIMAL(3,2)'],
    ['123456789012.345::DECIMAL(15,3)', 123456789012.345, 'DECIMAL(15,3)'],
    ['12345678901234567890.5::DECIMAL(38,1)', '12345678901234567890.5', 'DECIMAL(38,1)'],
    ['true', true, 'BOOLEAN'],
    ["'text'", 'text', 'VARCHAR'],
    ['NULL', null, 'INTEGER'],
    ['NULL::BIGINT', null, 'BIGINT'],
    [`'{"a": [1, 2], "b": null}'::JSON`, { a: [1, 2], b: null }, 'JSON'],
    [`'"just a string"'::JSON`, 'just a string', 'JSON'],
    ["[TIMESTAMP '2026-11-25 10:00:00', NULL]", ['2026-11-25T10:00:00.000Z', null], 'TIMESTAMP[]'],
    ["{'n': 1::BIGINT, 'd': DATE '2026-11-25'}", { n: '1', d: '2026-11-25' }, 'STRUCT("n" BIGINT, "d" DATE)'],
    [`{'j': '{"x": 1}'::JSON}`, { j: { x: 1 } }, 'STRUCT("j" VARCHAR)'],
    [`['[1]'::JSON]`, [[1]], 'VARCHAR[]'],
    ["MAP {'k': 1}", [{ key: 'k', value: 1 }], 'MAP(VARCHAR, INTEGER)'],
  ])('%s → %j', async (expression, value, type) => {
    expect(await one(expression)).toEqual({ value, type });
  });

  it('keeps duplicate column names apart, and a column named __proto__ is a column', async () => {
    const answer = await engine.queryAll('SELECT 1 AS a, 2 AS a, 3 AS __proto__');
    expect(answer.columns.map((column) => column.name)).toEqual(['a', 'a:1', '__proto__']);
    expect(JSON.parse(JSON.stringify(answer.rows[0]))).toEqual(JSON.parse('{"a": 1, "a:1": 2, "__proto__": 3}'));
  });

  it('formats nanoseconds since the epoch with as many fraction digits as the value needs', () => {
    expect(isoTimestamp(0n, 9)).toBe('1970-01-01T00:00:00.000Z');
    expect(isoTimestamp(1_000n, 9)).toBe('1970-01-01T00:00:00.000001Z');
    expect(isoTimestamp(1n, 9)).toBe('1970-01-01T00:00:00.000000001Z');
    expect(isoTimestamp(1n, 6)).toBe('1970-01-01T00:00:00.000Z');
    expect(isoTimestamp(-1_000n, 6)).toBe('1969-12-31T23:59:59.999999Z');
    expect(isoTimestamp(10n ** 30n, 6)).toBeNull();
  });
});
