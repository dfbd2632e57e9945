import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDir, tempDir, type RunningStrata } from '../fixtures/strata.js';
import { clickEvents, failure, ingest, pgClient, startWithPg } from './helpers.js';
import { sendCancelRequest } from './wire-client.js';

/** The unmodified `pg` client against Strata's PostgreSQL listener, over events ingested through HTTP. */
describe('the pg client queries Strata as it would PostgreSQL', () => {
  let dir: string;
  let server: RunningStrata & { pgPort: number };
  let client: pg.Client;

  beforeAll(async () => {
    dir = await tempDir();
    server = await startWithPg(dir);
    await ingest(server, clickEvents(60));
    client = await pgClient(server.pgPort);
  });

  afterAll(async () => {
    await client?.end();
    await server?.close();
    await removeDir(dir);
  });

  it('answers the raw table, with PostgreSQL types', async () => {
    const result = await client.query('SELECT count(*) AS n, sum(amount) AS total, min(ts) AS first FROM clicks');
    expect(result.command).toBe('SELECT');
    expect(result.rowCount).toBe(1);
    expect(result.fields.map((field) => [field.name, field.dataTypeID])).toEqual([
      ['n', 20],
      ['total', 701],
      ['first', 1114],
    ]);
    // int8 arrives as a string (pg's default), float8 as a number.
    const expectedTotal = clickEvents(60).reduce((sum, event) => sum + ((event.amount as number | null) ?? 0), 0);
    expect(result.rows[0]).toMatchObject({ n: '60', total: expectedTotal });
  });

  it('binds parameters ($1, $2) in the extended protocol', async () => {
    const result = await client.query('SELECT user_id, count(*)::INT AS n FROM clicks WHERE page = $1 AND amount > $2 GROUP BY user_id ORDER BY user_id', ['/p1', 10]);
    const expected = new Map<string, number>();
    for (const event of clickEvents(60)) {
      if (event.page === '/p1' && (event.amount as number | null) !== null && (event.amount as number) > 10) {
        expected.set(event.user_id as string, (expected.get(event.user_id as string) ?? 0) + 1);
      }
    }
    expect(result.rows).toEqual([...expected.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([user_id, n]) => ({ user_id, n })));
  });

  it('keeps a parameter a value: quotes in it cannot change the statement', async () => {
    const result = await client.query('SELECT count(*)::INT AS n FROM clicks WHERE page = $1', ["/p1' OR '1'='1"]);
    expect(result.rows).toEqual([{ n: 0 }]);
  });

  it('runs a named prepared statement twice, parsing it once', async () => {
    const byUser = { name: 'clicks-by-user', text: 'SELECT count(*)::INT AS n FROM clicks WHERE user_id = $1' };
    const first = await client.query({ ...byUser, values: ['u1'] });
    const second = await client.query({ ...byUser, values: ['u2'] });
    const count = (user: string) => clickEvents(60).filter((event) => event.user_id === user).length;
    expect(first.rows).toEqual([{ n: count('u1') }]);
    expect(second.rows).toEqual([{ n: count('u2') }]);
  });

  it('answers errors with their SQLSTATE, and the connection goes on', async () => {
    expect(await failure(client.query('SELEC 1'))).toMatchObject({ code: '42601' });
    expect(await failure(client.query('SELECT * FROM no_such_table'))).toMatchObject({ code: '42P01' });
    expect(await failure(client.query('SELECT no_such_column FROM clicks'))).toMatchObject({ code: '42703' });
    expect(await failure(client.query("INSERT INTO clicks (event_id) VALUES ('x')"))).toMatchObject({ code: '42501' });
    expect(await failure(client.query('DROP TABLE clicks'))).toMatchObject({ code: '42501' });
    expect(await failure(client.query('SELECT * FROM no_such_table WHERE page = $1', ['/p1']))).toMatchObject({ code: '42P01' });
    // The same connection still answers.
    expect((await client.query('SELECT 42 AS answer')).rows).toEqual([{ answer: 42 }]);
    expect((await client.query('SELECT $1::INT + 1 AS answer', [41])).rows).toEqual([{ answer: 42 }]);
  });

  it('cancels a long query when a CancelRequest names its connection (57014), and the connection goes on', async () => {
    const other = await pgClient(server.pgPort);
    try {
      const started = Date.now();
      // Awaited through failure() from the start, so its rejection is never unhandled meanwhile.
      const long = failure(other.query('SELECT sum(a.range * b.range) FROM range(100000000) a, range(100000) b'));
      await new Promise((resolve) => setTimeout(resolve, 300));
      // What libpq's PQcancel does: a new connection carrying the process ID and secret from BackendKeyData.
      const { processID, secretKey } = other as unknown as { processID: number; secretKey: number };
      await sendCancelRequest(server.pgPort, processID, secretKey);
      expect(await long).toMatchObject({ code: '57014' });
      expect(Date.now() - started).toBeLessThan(20_000);
      expect((await other.query('SELECT 1 AS still_here')).rows).toEqual([{ still_here: 1 }]);
    } finally {
      await other.end();
    }
  });

  it('lists the views and their batch and speed tables as tables, and answers them', async () => {
    const tables = await client.query(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' AND table_type = 'BASE TABLE' ORDER BY 1",
    );
    expect(tables.rows.map((row: { table_name: string }) => row.table_name)).toEqual(
      expect.arrayContaining(['clicks', 'page_minute', 'page_minute__batch', 'page_minute__speed']),
    );
    // The merged view catches up with the ingested events as the speed layer runs.
    let views = 0;
    for (let i = 0; i < 200 && views < 60; i++) {
      views = Number((await client.query('SELECT coalesce(sum(views), 0)::BIGINT AS n FROM page_minute')).rows[0].n);
      if (views < 60) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(views).toBe(60);
    const perPage = await client.query('SELECT page, sum(views)::INT AS views FROM page_minute GROUP BY page ORDER BY page');
    expect(perPage.rows).toEqual([
      { page: '/p0', views: 20 },
      { page: '/p1', views: 20 },
      { page: '/p2', views: 20 },
    ]);
    const layers = await client.query('SELECT (SELECT count(*) FROM page_minute__batch) + (SELECT count(*) FROM page_minute__speed) AS n');
    expect(Number(layers.rows[0].n)).toBeGreaterThan(0);
  });

  it('runs each statement of a simple query that holds several', async () => {
    // pg answers an array of results, one per statement.
    const results = (await client.query('SELECT 1 AS a; SELECT 2 AS b')) as unknown as pg.QueryResult[];
    expect(results.map((result) => result.rows)).toEqual([[{ a: 1 }], [{ b: 2 }]]);
  });

  it('acknowledges the session statements clients send, and answers SHOW, version() and current_setting()', async () => {
    expect((await client.query('BEGIN')).command).toBe('BEGIN');
    expect((await client.query("SET application_name = 'strata-test'")).command).toBe('SET');
    expect((await client.query('SHOW application_name')).rows).toEqual([{ application_name: 'strata-test' }]);
    expect((await client.query('COMMIT')).command).toBe('COMMIT');
    expect((await client.query('SHOW server_version')).rows[0].server_version).toMatch(/^15\.\d+/);
    expect((await client.query('SHOW standard_conforming_strings')).rows).toEqual([{ standard_conforming_strings: 'on' }]);
    expect((await client.query('SHOW TimeZone')).rows).toEqual([{ TimeZone: 'UTC' }]);
    expect((await client.query('SHOW transaction_isolation')).rows).toEqual([{ transaction_isolation: 'read committed' }]);
    const version = (await client.query('SELECT version()')).rows[0].version as string;
    expect(version).toMatch(/^PostgreSQL 15\.\d+ \(Strata .*DuckDB v/);
    expect((await client.query("SELECT current_setting('client_encoding') AS e, current_setting('DateStyle') AS d")).rows).toEqual([
      { e: 'UTF8', d: 'ISO, MDY' },
    ]);
    expect(await failure(client.query("SELECT current_setting('no.such_setting')"))).toMatchObject({ code: '42704' });
    // DuckDB's own SHOW forms still reach DuckDB.
    const described = await client.query('SHOW clicks');
    expect(described.rows.map((row: { column_name: string }) => row.column_name)).toContain('event_id');
  });
});
