import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clicksConfig, removeDir, startInProcess, tempDir, waitForDelivery, type RunningStrata } from '../fixtures/strata.js';
import { ingest } from '../batch/support.js';

const VIEW = `SELECT page, time_bucket(INTERVAL '1 hour', ts) AS hour, count(*) AS views, sum(amount) AS revenue,
  approx_count_distinct(user_id) AS users FROM clicks GROUP BY page, hour`;

interface Answer {
  columns: { name: string; type: string }[];
  rows: Record<string, unknown>[];
  provenance: { batchVersion: number | null; watermark: Record<string, string>; speedSeq: Record<string, string>; freshnessMs: number };
}

const event = (i: number, page: string, hour: number, amount: number) => ({
  event_id: `e${i}`,
  ts: `2026-11-25T${String(hour).padStart(2, '0')}:15:00Z`,
  user_id: `u${i % 7}`,
  page,
  amount,
});

describe('GET /v1/views/{view}', () => {
  let dir: string;
  let server: RunningStrata;
  const get = async (query: string) => {
    const response = await fetch(`${server.url}/v1/views/${query}`);
    return { status: response.status, body: (await response.json()) as Answer & { error?: { code: string; message: string } } };
  };
  const speedCaughtUp = async (total: number) => {
    for (let i = 0; i < 200; i++) {
      const { body } = await get('hits');
      if (Object.values(body.provenance.speedSeq).reduce((a, b) => a + Number(b), 0) >= total) return body;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error('the speed layer did not catch up');
  };

  beforeAll(async () => {
    dir = await tempDir();
    server = await startInProcess(clicksConfig({ delivery: { maxSeconds: 0.05 }, speed: { intervalMs: 50 }, views: { hits: VIEW } }, 2), dir);
  });
  afterAll(async () => {
    await server?.close();
    await removeDir(dir);
  });

  it('answers the speed layer alone before any batch run, with its provenance', async () => {
    await ingest(server, [event(1, '/a', 10, 1.5), event(2, '/a', 10, 2.5), event(3, '/b', 11, 4), event(4, '/c', 12, 8)]);
    const body = await speedCaughtUp(4);
    expect(body.columns).toEqual([
      { name: 'page', type: 'VARCHAR' },
      { name: 'hour', type: 'TIMESTAMP' },
      { name: 'views', type: 'BIGINT' },
      { name: 'revenue', type: 'DOUBLE' },
      { name: 'users', type: 'BIGINT' },
    ]);
    // Default order: the group-by columns ascending.
    expect(body.rows).toEqual([
      { page: '/a', hour: '2026-11-25T10:00:00.000Z', views: '2', revenue: 4, users: '2' },
      { page: '/b', hour: '2026-11-25T11:00:00.000Z', views: '1', revenue: 4, users: '1' },
      { page: '/c', hour: '2026-11-25T12:00:00.000Z', views: '1', revenue: 8, users: '1' },
    ]);
    expect(body.provenance.batchVersion).toBeNull();
    expect(body.provenance.watermark).toEqual({ 0: '0', 1: '0' });
    expect(typeof body.provenance.freshnessMs).toBe('number');
  });

  it('splits the rows between the layers at W after a batch run, and merges them', async () => {
    await waitForDelivery(server);
    expect((await server.strata.batch.run()).state).toBe('succeeded');
    await ingest(server, [event(5, '/a', 10, 10), event(6, '/d', 13, 1)]);
    const merged = await speedCaughtUp(6);
    expect(merged.provenance.batchVersion).toBe(1);
    expect(merged.rows.map((row) => [row.page, row.views, row.revenue])).toEqual([
      ['/a', '3', 14],
      ['/b', '1', 4],
      ['/c', '1', 8],
      ['/d', '1', 1],
    ]);
    const batch = (await get('hits?layer=batch')).body;
    expect(batch.rows.map((row) => [row.page, row.views])).toEqual([
      ['/a', '2'],
      ['/b', '1'],
      ['/c', '1'],
    ]);
    const speed = (await get('hits?layer=speed')).body;
    expect(speed.rows.map((row) => [row.page, row.views])).toEqual([
      ['/a', '1'],
      ['/d', '1'],
    ]);
  });

  it('filters on group-by columns with bound values, orders and limits', async () => {
    expect((await get('hits?page=/a')).body.rows.map((row) => row.views)).toEqual(['3']);
    expect((await get('hits?hour.gte=2026-11-25T11:00:00Z&hour.lt=2026-11-25T13:00:00Z')).body.rows.map((row) => row.page)).toEqual(['/b', '/c']);
    expect((await get('hits?order=-revenue&limit=2')).body.rows.map((row) => row.page)).toEqual(['/a', '/c']);
    // A group looked up by every group-by column: held by the batch version alone, by both layers (merged), by
    // the speed layer alone, and by neither.
    const lookup = async (page: string, hour: number) =>
      (await get(`hits?page=${page}&hour=2026-11-25T${hour}:00:00Z`)).body.rows.map((row) => [row.page, row.views, row.revenue, row.users]);
    expect(await lookup('/b', 11)).toEqual([['/b', '1', 4, '1']]);
    expect(await lookup('/a', 10)).toEqual([['/a', '3', 14, '3']]);
    expect(await lookup('/d', 13)).toEqual([['/d', '1', 1, '1']]);
    expect(await lookup('/b', 10)).toEqual([]);
    // A range over groups of either layer alone, and over groups only the speed layer holds.
    const range = async (query: string) => (await get(`hits?${query}`)).body.rows.map((row) => [row.page, row.views, row.revenue, row.users]);
    expect(await range('hour.gte=2026-11-25T12:00:00Z')).toEqual([
      ['/c', '1', 8, '1'],
      ['/d', '1', 1, '1'],
    ]);
    expect(await range('hour.gte=2026-11-25T13:00:00Z&page.gte=/b')).toEqual([['/d', '1', 1, '1']]);
    // A value is data, never SQL.
    expect((await get(`hits?page=${encodeURIComponent("/a' OR '1'='1")}`)).body.rows).toEqual([]);
  });

  it('offers the view and its speed layer as SQL tables, equal to the API', async () => {
    const sqlRows = async (table: string) =>
      (await server.strata.sql.queryAll(`SELECT page, views, revenue FROM ${table} ORDER BY page`)).rows.map((row) => [row.page, row.views, row.revenue]);
    expect(await sqlRows('hits')).toEqual((await get('hits')).body.rows.map((row) => [row.page, row.views, row.revenue]));
    expect(await sqlRows('hits__speed')).toEqual((await get('hits?layer=speed')).body.rows.map((row) => [row.page, row.views, row.revenue]));
    expect(await sqlRows('hits__batch')).toEqual((await get('hits?layer=batch')).body.rows.map((row) => [row.page, row.views, row.revenue]));
    // A new record shows in the next query's `hits`.
    await ingest(server, [event(7, '/e', 14, 2)]);
    await speedCaughtUp(7);
    expect((await server.strata.sql.queryAll(`SELECT count(*) AS n FROM hits`)).rows).toEqual([{ n: '5' }]);
  });

  it('answers a kept older batch version with ?version=, with its own W and no speed layer', async () => {
    await waitForDelivery(server);
    expect((await server.strata.batch.run()).state).toBe('succeeded');
    const current = await speedCaughtUp(7);
    expect(current.provenance.batchVersion).toBe(2);
    const old = (await get('hits?version=1')).body;
    expect(old.provenance).toMatchObject({ batchVersion: 1, speedSeq: {} });
    const w1 = Object.values(old.provenance.watermark).reduce((a, b) => a + Number(b), 0);
    expect(w1).toBe(4);
    expect(old.rows.map((row) => [row.page, row.views])).toEqual([
      ['/a', '2'],
      ['/b', '1'],
      ['/c', '1'],
    ]);
    expect((await get('hits?version=2&page=/e')).body.rows.map((row) => [row.page, row.views])).toEqual([['/e', '1']]);
    expect((await get('hits?version=2')).body.rows).toEqual((await get('hits?layer=batch')).body.rows);
    expect((await get('hits?version=9')).status).toBe(404);
    const mixed = await get('hits?version=1&layer=merged');
    expect(mixed.status).toBe(400);
    expect(mixed.body.error!.message).toMatch(/layer=batch/);
  });

  it('reports the memory each view holds per group key', async () => {
    await ingest(server, [event(8, '/f', 15, 1), event(9, '/g', 16, 1)]);
    await speedCaughtUp(9);
    const since = new Date().toISOString();
    let memory = server.strata.speed.status()[0]!.memory;
    for (let i = 0; i < 100 && (memory === null || memory.measuredAt <= since); i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      memory = server.strata.speed.status()[0]!.memory;
    }
    // Version 2 covers /a../e (5 groups); the speed layer holds /f and /g.
    expect(memory).toMatchObject({ speedGroupKeys: 2, batchGroupKeys: 5 });
    expect(memory!.speedBytes).toBeGreaterThan(0);
    expect(memory!.speedBytesPerGroupKey).toBe(Math.round(memory!.speedBytes / 2));
    expect(memory!.batchBytes).toBeGreaterThan(0);
    const listed = (await (await fetch(`${server.url}/v1/streams`)).json()) as { views: { view: string; memory: unknown }[] };
    expect(listed.views[0]!.memory).toMatchObject({ speedGroupKeys: 2 });
  });

  it('refuses unknown columns, bad values and unknown views', async () => {
    const unknown = await get('hits?nope=1&order=-missing');
    expect(unknown.status).toBe(400);
    expect(unknown.body.error!.message).toMatch(/"nope", "missing"/);
    expect((await get('hits?views=3')).status).toBe(400);
    expect((await get('hits?hour=yesterday')).status).toBe(400);
    expect((await get('hits?limit=100001')).status).toBe(400);
    expect((await get('hits?layer=cold')).status).toBe(400);
    expect((await get('nothing')).status).toBe(404);
  });

  it('counts a record once in the API and in SQL right after a batch run absorbs it from the speed layer', async () => {
    // Right after a run absorbed records the speed layer held is where one could show twice (in the version and
    // in the speed partials the version covers) or not at all, in the API or in the SQL tables' exports.
    const sum = (rows: Record<string, unknown>[]) => rows.reduce((total, row) => total + Number(row.views), 0);
    for (let round = 0; round < 3; round++) {
      const first = 10 + round * 2;
      await ingest(server, [event(first, '/h', 17, 1), event(first + 1, '/i', 17, 2)]);
      const total = first + 1;
      await speedCaughtUp(total);
      await waitForDelivery(server);
      expect((await server.strata.batch.run()).state).toBe('succeeded');
      const [sql, speed] = await Promise.all([
        server.strata.sql.queryAll(`SELECT sum(views)::INTEGER AS n FROM hits`),
        server.strata.sql.queryAll(`SELECT count(*)::INTEGER AS n FROM hits__speed`),
      ]);
      expect(sql.rows, `round ${round}`).toEqual([{ n: total }]);
      expect(speed.rows, `round ${round}`).toEqual([{ n: 0 }]);
      expect(sum((await get('hits')).body.rows)).toBe(total);
    }
  });
});
