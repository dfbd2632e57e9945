import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clickRows, writeParquet } from '../fixtures/lake.js';
import { ADMIN_AUTH } from '../fixtures/auth.js';
import {
  clicksConfig,
  postRecords,
  removeDir,
  startInProcess,
  tempDir,
  waitForDelivery,
  type RunningStrata,
} from '../fixtures/strata.js';

async function postSql(
  url: string,
  body: string,
  headers: Record<string, string> = { 'content-type': 'application/json' },
): Promise<{ status: number; type: string; text: string; json: () => unknown }> {
  const response = await fetch(`${url}/v1/sql`, { method: 'POST', headers, body });
  const text = await response.text();
  return { status: response.status, type: response.headers.get('content-type') ?? '', text, json: () => JSON.parse(text) };
}

const sql = (query: string) => JSON.stringify({ sql: query });

describe('POST /v1/sql', () => {
  let dir: string;
  let server: RunningStrata;

  beforeAll(async () => {
    dir = await tempDir();
    server = await startInProcess(clicksConfig({ delivery: { maxSeconds: 0.1 } }, 2), dir);
  });
  afterAll(async () => {
    await server.close();
    await removeDir(dir);
  });

  it('answers JSON over records ingested and delivered to the lake', async () => {
    const records = Array.from({ length: 50 }, (_, i) => ({
      event_id: `e${i}`,
      ts: `2026-11-25T10:00:${String(i).padStart(2, '0')}.250Z`,
      user_id: `u${i % 5}`,
      page: i % 2 === 0 ? '/home' : '/cart',
      amount: i % 10 === 0 ? null : i,
    }));
    expect((await postRecords(server.url, 'clicks', JSON.stringify(records))).status).toBe(200);
    await waitForDelivery(server);
    const answer = await postSql(
      server.url,
      sql('SELECT page, count(*) AS n, min(ts) AS first, sum(amount) AS total FROM clicks GROUP BY page ORDER BY page'),
    );
    expect(answer.status).toBe(200);
    expect(answer.type).toMatch(/^application\/json/);
    expect(answer.json()).toEqual({
      columns: [
        { name: 'page', type: 'VARCHAR' },
        { name: 'n', type: 'BIGINT' },
        { name: 'first', type: 'TIMESTAMP' },
        { name: 'total', type: 'DOUBLE' },
      ],
      rows: [
        { page: '/cart', n: '25', first: '2026-11-25T10:00:01.250Z', total: 625 },
        { page: '/home', n: '25', first: '2026-11-25T10:00:00.250Z', total: 500 },
      ],
    });
  });

  it('takes the SQL as text/plain too', async () => {
    const answer = await postSql(server.url, 'SELECT 1 AS one', { 'content-type': 'text/plain; charset=utf-8' });
    expect(answer.status).toBe(200);
    expect(answer.json()).toEqual({ columns: [{ name: 'one', type: 'INTEGER' }], rows: [{ one: 1 }] });
  });

  it('answers CSV with a header row and RFC 4180 quoting for Accept: text/csv', async () => {
    const answer = await postSql(
      server.url,
      sql(`SELECT * FROM (VALUES (1, 'plain', DATE '2026-11-25'), (2, 'with, comma and "quotes"', NULL), (3, '', NULL), (4, e'two\nlines', NULL)) t(id, text, day) ORDER BY id`),
      { 'content-type': 'application/json', accept: 'text/csv' },
    );
    expect(answer.status).toBe(200);
    expect(answer.type).toMatch(/^text\/csv/);
    expect(answer.text).toBe(
      'id,text,day\r\n1,plain,2026-11-25\r\n2,"with, comma and ""quotes""",\r\n3,"",\r\n4,"two\nlines",\r\n',
    );
  });

  it('streams NDJSON rows after a columns line for Accept: application/x-ndjson', async () => {
    const answer = await postSql(server.url, sql('SELECT x, x::BIGINT * 2 AS y FROM range(3000) t(x)'), {
      'content-type': 'application/json',
      accept: 'application/x-ndjson',
    });
    expect(answer.status).toBe(200);
    expect(answer.type).toMatch(/^application\/x-ndjson/);
    const lines = answer.text.trimEnd().split('\n').map((line) => JSON.parse(line) as unknown);
    expect(lines[0]).toEqual({ columns: [{ name: 'x', type: 'BIGINT' }, { name: 'y', type: 'BIGINT' }] });
    expect(lines).toHaveLength(3001);
    expect(lines[1]).toEqual({ x: '0', y: '0' });
    expect(lines[3000]).toEqual({ x: '2999', y: '5998' });
  });

  it('streams a large JSON answer whole', async () => {
    const answer = await postSql(server.url, sql('SELECT x::INTEGER AS x FROM range(100000) t(x)'));
    const body = answer.json() as { rows: { x: number }[] };
    expect(body.rows).toHaveLength(100_000);
    expect(body.rows[99_999]).toEqual({ x: 99_999 });
  });

  it.each([
    ['DROP TABLE clicks', 'query_refused', /DROP statements are refused/],
    ["COPY clicks TO '/tmp/x.csv'", 'query_refused', /COPY statements are refused/],
    ["ATTACH '/tmp/x.db'", 'query_refused', /ATTACH statements are refused/],
    ['INSTALL httpfs', 'query_refused', /INSTALL statements are refused/],
    ["SELECT * FROM read_text('/etc/passwd')", 'query_refused', /Permission Error/],
    ["SELECT * FROM read_csv('/etc/passwd')", 'query_refused', /Permission Error/],
    ['SELECT 1; SELECT 2', 'query_refused', /one statement per query/],
    ['SET threads = 1', 'query_refused', /SET statements are refused/],
    ['PRAGMA database_list', 'query_refused', /PRAGMA statements are refused/],
    ['CREATE TABLE t AS SELECT 1', 'query_refused', /CREATE statements are refused/],
    ['SELEC 1', 'query_failed', /syntax error/],
    ['SELECT * FROM nope', 'query_failed', /Table with name nope does not exist/],
  ])('answers %j with 400 %s', async (query, code, message) => {
    const answer = await postSql(server.url, sql(query));
    expect(answer.status).toBe(400);
    expect(answer.json()).toEqual({ error: { code, message: expect.stringMatching(message) } });
  });

  it('answers a body it cannot read with 400 or 415', async () => {
    expect((await postSql(server.url, '{"sql": ')).json()).toMatchObject({ error: { code: 'malformed_input' } });
    expect((await postSql(server.url, '{"query": "SELECT 1"}')).json()).toEqual({
      error: { code: 'malformed_input', message: 'expected a JSON object {"sql": "SELECT ..."}' },
    });
    const csv = await postSql(server.url, 'a,b', { 'content-type': 'text/csv' });
    expect(csv.status).toBe(415);
    expect(csv.json()).toMatchObject({ error: { code: 'unsupported_media_type', message: expect.stringContaining('text/plain') } });
    const none = await fetch(`${server.url}/v1/sql`, { method: 'POST' });
    expect(none.status).toBe(400);
  });

  it('cancels the query when the client goes away', async () => {
    // node:http rather than fetch: aborting a fetch makes undici open a spare connection that holds the server's
    // close until undici drops it.
    const request = http.request(`${server.url}/v1/sql`, { method: 'POST', headers: { 'content-type': 'text/plain', ...ADMIN_AUTH } });
    const gone = new Promise<void>((resolve) => request.on('error', () => resolve()));
    request.end('SELECT count(*) FROM range(10000000000) t(x) WHERE hash(x) = 0');
    for (let i = 0; i < 1000 && server.strata.sql.activeQueries === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(server.strata.sql.activeQueries).toBe(1);
    request.destroy();
    await gone;
    for (let i = 0; i < 1000 && server.strata.sql.activeQueries > 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(server.strata.sql.activeQueries).toBe(0);
  });

  it('keeps text/plain refused on the ingest route', async () => {
    const answer = await postRecords(server.url, 'clicks', '{}', 'text/plain');
    expect(answer.status).toBe(415);
  });
});

describe('POST /v1/sql past the time limit', () => {
  let dir: string;
  let server: RunningStrata;

  beforeAll(async () => {
    dir = await tempDir();
    server = await startInProcess(clicksConfig({ sql: { timeoutSeconds: 0.3 } }, 1), dir);
    const file = await writeParquet(server.strata.store, 'raw/clicks/dt=2026-11-25/0-1-3.parquet', clickRows(0, 1, 3));
    await server.strata.catalog.commitDelivery('clicks', 0, 1, 3, [file]);
  });
  afterAll(async () => {
    await server.close();
    await removeDir(dir);
  });

  it('answers 504 query_timeout naming the limit, and the next query runs', async () => {
    const answer = await postSql(server.url, sql('SELECT count(*) FROM range(10000000000) t(x) WHERE hash(x) = 0'));
    expect(answer.status).toBe(504);
    expect(answer.json()).toEqual({ error: { code: 'query_timeout', message: expect.stringContaining('300 ms limit') } });
    expect((await postSql(server.url, sql('SELECT count(*) AS n FROM clicks'))).json()).toMatchObject({ rows: [{ n: '3' }] });
  });

  it('ends a streamed NDJSON answer with an error line when the limit strikes mid-stream', async () => {
    const response = await fetch(`${server.url}/v1/sql`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', accept: 'application/x-ndjson' },
      body: 'SELECT x FROM range(20000000) t(x)',
    });
    expect(response.status).toBe(200);
    // Reading slowly: the server stalls on backpressure and the limit passes.
    await new Promise((resolve) => setTimeout(resolve, 800));
    const lines = (await response.text()).trimEnd().split('\n');
    expect(lines.length).toBeGreaterThan(2);
    expect(JSON.parse(lines.at(-1)!)).toEqual({ error: { code: 'query_timeout', message: expect.stringContaining('300 ms limit') } });
  });

  it('cuts a streamed JSON answer off when the limit strikes mid-stream, so it cannot pass for whole', async () => {
    const response = await fetch(`${server.url}/v1/sql`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'SELECT x FROM range(20000000) t(x)',
    });
    expect(response.status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 800));
    await expect(response.text()).rejects.toThrow();
    expect((await postSql(server.url, sql('SELECT 1 AS one'))).json()).toMatchObject({ rows: [{ one: 1 }] });
  });
});
