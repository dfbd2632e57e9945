import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/index.js';
import { ADMIN_AUTH } from '../fixtures/auth.js';
import { removeDir, startInProcess, tempDir, type RunningStrata } from '../fixtures/strata.js';
import { as, call, createToken } from './support.js';

/** Two streams, a view over one, and an analyst who may query clicks and the views but not orders. */
const config: ConfigInput = {
  streams: {
    clicks: { schema: { event_id: 'string', ts: 'timestamp', user_id: 'string', page: 'string' }, eventTime: 'ts' },
    orders: { schema: { order_id: 'string', ts: 'timestamp', user_id: 'string', total: 'double' }, eventTime: 'ts' },
  },
  views: { page_count: 'SELECT page, count(*) AS views FROM clicks GROUP BY page' },
  policies: { analyst: { allow: [{ actions: ['query'], resources: ['table:clicks', 'view:*'] }] } },
};

describe('SQL is authorized on every table and view the query reads', () => {
  let dir: string;
  let server: RunningStrata;
  let analyst: string;

  const sql = (token: Record<string, string>, text: string) => call(server.url, 'POST', '/v1/sql', { ...token, 'content-type': 'text/plain' }, text);

  beforeAll(async () => {
    dir = await tempDir();
    server = await startInProcess(config, dir);
    analyst = await createToken(server.url, 'analyst_a', ['analyst']);
  });
  afterAll(async () => {
    await server?.close();
    await removeDir(dir);
  });

  it.each([
    'SELECT count(*) FROM clicks',
    'SELECT * FROM page_count',
    'SELECT * FROM page_count__batch UNION ALL SELECT * FROM page_count__speed',
    'SELECT count(*) FROM main.CLICKS',
    'WITH recent AS (SELECT * FROM clicks) SELECT count(*) FROM recent',
    'SELECT * FROM clicks c JOIN page_count p ON c.page = p.page',
    'DESCRIBE clicks',
    'SUMMARIZE clicks',
    'SELECT * FROM range(3)',
    'SELECT 1 + 1',
  ])('runs what it may read: %s', async (text) => {
    const answer = await sql(as(analyst), text);
    expect(answer.status, answer.text).toBe(200);
  });

  it.each([
    ['a join of an allowed and a forbidden table', 'SELECT * FROM clicks JOIN orders ON clicks.user_id = orders.user_id'],
    ['a subquery in WHERE', 'SELECT * FROM clicks WHERE user_id IN (SELECT user_id FROM orders)'],
    ['a scalar subquery, in capitals', 'SELECT (SELECT count(*) FROM ORDERS) AS n'],
    ['a CTE', 'WITH o AS (SELECT * FROM orders) SELECT * FROM clicks, o'],
    ['a subquery in FROM', 'SELECT count(*) FROM (SELECT * FROM (SELECT user_id FROM orders) AS inner_q) AS outer_q'],
    ['a name a CTE shadows in another scope only', 'SELECT * FROM (WITH orders AS (SELECT 1 AS x) SELECT * FROM orders) AS a, orders'],
    ['a qualified name', 'SELECT * FROM memory.main.orders'],
    ['DESCRIBE', 'DESCRIBE orders'],
    ['a set operation', 'SELECT user_id FROM clicks UNION SELECT user_id FROM orders'],
  ])('refuses the whole query, naming the forbidden table: %s', async (_what, text) => {
    const answer = await sql(as(analyst), text);
    expect(answer.status).toBe(403);
    expect(JSON.parse(answer.text)).toEqual({ error: { code: 'forbidden', message: 'token "analyst_a" may not query table:orders' } });
  });

  it.each([
    ['a DuckDB system view', 'SELECT * FROM duckdb_views', 'system:duckdb_views'],
    ['a system table function', 'SELECT * FROM duckdb_tables()', 'system:duckdb_tables()'],
    ['information_schema', 'SELECT * FROM information_schema.tables', 'system:information_schema.tables'],
    ['a file read by a table function', "SELECT * FROM read_parquet('lake/raw/orders/*.parquet')", 'system:read_parquet()'],
    ['a file named as a table', "SELECT * FROM 'lake/raw/orders/x.parquet'", 'system:lake/raw/orders/x.parquet'],
    ['SHOW TABLES', 'SHOW TABLES', 'system:SHOW tables'],
    ['a CTE named as a system view', 'WITH duckdb_views AS (SELECT 1 AS x) SELECT * FROM duckdb_views', 'system:duckdb_views'],
    ['the audit log', 'SELECT * FROM strata_audit', 'system:strata_audit'],
  ])('keeps what is not a Strata table for admin tokens: %s', async (_what, text, resource) => {
    const answer = await sql(as(analyst), text);
    expect(answer.status).toBe(403);
    expect(JSON.parse(answer.text)).toEqual({ error: { code: 'forbidden', message: `token "analyst_a" may not query ${resource}` } });
  });

  it('lets an admin query all of it', async () => {
    for (const text of ['SELECT * FROM clicks JOIN orders ON true', 'SELECT count(*) FROM duckdb_views', 'SELECT count(*) FROM strata_audit']) {
      const answer = await sql(ADMIN_AUTH, text);
      expect([text, answer.status]).toEqual([text, 200]);
    }
  });

  it('checks a refused query before it runs: a forbidden table that does not exist is refused, not "not found"', async () => {
    const answer = await sql(as(analyst), 'SELECT * FROM nowhere');
    expect(answer.status).toBe(403);
    expect(JSON.parse(answer.text).error.message).toBe('token "analyst_a" may not query system:nowhere');
  });
});
