import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig, type ConfigInput } from '../../src/config/index.js';
import { createHttpServer } from '../../src/http/index.js';
import { checkDashboards } from '../../src/http/console-api-routes.js';
import { registerConsoleRoutes } from '../../src/http/console-routes.js';
import { ConfigError } from '../../src/errors.js';
import { Strata } from '../../src/strata.js';
import { compileViews } from '../../src/views/index.js';
import Fastify from 'fastify';
import { clicksConfig, postRecords, removeDir, startInProcess, tempDir, type RunningStrata } from '../fixtures/strata.js';

const VIEW_SQL = "SELECT page, time_bucket(INTERVAL '1 minute', ts) AS minute, count(*) AS views FROM clicks GROUP BY page, minute";

function consoleConfig(dashboards: ConfigInput['dashboards'] = { traffic: { panels: [{ view: 'page_minute', chart: 'line', x: 'minute', y: 'views', series: 'page' }] } }): ConfigInput {
  return clicksConfig({ views: { page_minute: VIEW_SQL }, dashboards, delivery: { maxSeconds: 0.2 } }, 2);
}

const click = (i: number, page = '/home', ts = '2026-11-25T10:00:00Z') => ({ event_id: `e${i}`, ts, user_id: `u${i % 7}`, page, amount: null });

/** Reads server-sent events from a stream until `count` events arrived; answers them with their names. */
async function readEvents(url: string, count: number): Promise<{ event: string; data: unknown }[]> {
  const controller = new AbortController();
  const response = await fetch(url, { signal: controller.signal });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  const events: { event: string; data: unknown }[] = [];
  let buffer = '';
  while (events.length < count) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (event !== undefined && data !== undefined) events.push({ event, data: JSON.parse(data) });
    }
  }
  controller.abort();
  return events;
}

describe('the console API', () => {
  let dir: string;
  let server: RunningStrata;

  beforeAll(async () => {
    dir = await tempDir();
    server = await startInProcess(consoleConfig(), dir);
    await postRecords(server.url, 'clicks', JSON.stringify([click(1), click(2), click(3, '/cart')]));
  });
  afterAll(async () => {
    await server.close();
    await removeDir(dir);
  });

  it('lists the dashboards of the config', async () => {
    const body = await (await fetch(`${server.url}/v1/dashboards`)).json();
    expect(body).toEqual({ dashboards: [{ name: 'traffic', panels: [{ view: 'page_minute', chart: 'line', x: 'minute', y: 'views', series: 'page' }] }] });
  });

  it('lists the views with their columns, types and batch version', async () => {
    const before = (await (await fetch(`${server.url}/v1/views`)).json()) as { views: { name: string; columns: unknown; batch: unknown; keys: string[] }[] };
    expect(before.views).toHaveLength(1);
    expect(before.views[0]).toMatchObject({
      name: 'page_minute',
      stream: 'clicks',
      keys: ['page', 'minute'],
      measures: [{ name: 'views', kind: 'count' }],
      columns: [
        { name: 'page', type: 'VARCHAR', key: true },
        { name: 'minute', type: 'TIMESTAMP', key: true },
        { name: 'views', type: 'BIGINT', key: false },
      ],
      batch: null,
    });

    await waitUntil(async () => server.strata.delivery.deliveredSeq('clicks', 0) + server.strata.delivery.deliveredSeq('clicks', 1) >= 3);
    const run = await server.strata.batch.run();
    expect(run.state).toBe('succeeded');
    const after = (await (await fetch(`${server.url}/v1/views`)).json()) as { views: { batch: { version: number; maxEventTime: string; watermark: Record<string, string> } }[] };
    expect(after.views[0]!.batch.version).toBe(1);
    // The latest event time the version covers, as the catalog records it (microseconds).
    expect(Date.parse(after.views[0]!.batch.maxEventTime)).toBe(Date.parse('2026-11-25T10:00:00Z'));
    expect(Object.values(after.views[0]!.batch.watermark).reduce((sum, seq) => sum + Number(seq), 0)).toBe(3);

    const versions = await (await fetch(`${server.url}/v1/views/page_minute/versions`)).json();
    expect(versions).toMatchObject({ view: 'page_minute', versions: [{ version: 1, current: true, fromScratch: true, rows: 2 }] });
  });

  it('pushes the view answer of each layer asked for, every second, as server-sent events', async () => {
    const started = Date.now();
    const events = await readEvents(`${server.url}/v1/views/page_minute/events?layer=merged,speed&page=/home`, 4);
    expect(events.map((e) => e.event)).toEqual(['merged', 'speed', 'merged', 'speed']);
    // The second push comes an interval after the first.
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    const merged = events[0]!.data as { columns: unknown[]; rows: { page: string; views: string }[]; provenance: { batchVersion: number | null } };
    expect(merged.rows.every((row) => row.page === '/home')).toBe(true);
    expect(merged.provenance).toHaveProperty('freshnessMs');
    expect(merged.columns).toHaveLength(3);
  });

  it('answers 400 or 404 before a stream starts when its parameters are wrong', async () => {
    const layer = await fetch(`${server.url}/v1/views/page_minute/events?layer=fast`);
    expect(layer.status).toBe(400);
    expect(await layer.json()).toMatchObject({ error: { code: 'malformed_input', message: expect.stringContaining('"fast"') } });
    const column = await fetch(`${server.url}/v1/views/page_minute/events?nope=1`);
    expect(column.status).toBe(400);
    const view = await fetch(`${server.url}/v1/views/nope/events`);
    expect(view.status).toBe(404);
    expect((await fetch(`${server.url}/v1/views/nope/versions`)).status).toBe(404);
  });

  it('serves the console at / and its client routes, and keeps the API 404 elsewhere', async () => {
    for (const path of ['/', '/views/page_minute', '/dashboards/traffic', '/sql', '/catalog', '/catalog/clicks']) {
      const page = await fetch(`${server.url}${path}`);
      expect(page.status, path).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/^text\/html/);
      // The no-script summary of the streams, filled in by the server.
      expect(await page.text()).toContain('<td>clicks</td>');
    }
    const missing = await fetch(`${server.url}/views/page_minute/extra`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: { code: 'not_found' } });
    expect(await (await fetch(`${server.url}/health`)).json()).toEqual({ status: 'ok' });
  });

  it('serves the built assets with long-lived caching', async ({ skip }) => {
    const html = await (await fetch(`${server.url}/`)).text();
    const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    if (!script) skip('the console is not built (npm run build)');
    const asset = await fetch(`${server.url}${script}`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('cache-control')).toContain('immutable');
    expect(asset.headers.get('content-type')).toMatch(/javascript/);
  });
});

describe('the console without a build', () => {
  it('says to run npm run build', async () => {
    const dir = await tempDir();
    const strata = await Strata.open({ config: parseConfig(consoleConfig()), dataDir: dir });
    const app = Fastify();
    registerConsoleRoutes(app, strata, null);
    try {
      const page = await app.inject({ url: '/views/page_minute' });
      expect(page.statusCode).toBe(200);
      expect(page.body).toContain('npm run build');
      // No token came with the request (this app has no authentication hook): no data, a way to log in.
      expect(page.body).toContain('Log in to see the streams');
      expect(page.body).not.toContain('<td>clicks</td>');
    } finally {
      await app.close();
      await strata.close();
      await removeDir(dir);
    }
  });
});

describe('dashboard panels are checked against their view', () => {
  it('names the dashboard, panel and column that the view does not have', async () => {
    const config = parseConfig(
      consoleConfig({
        ok: { panels: [{ view: 'page_minute', chart: 'number', y: 'views' }] },
        bad: {
          panels: [
            { view: 'page_minute', chart: 'table', y: 'views' },
            { view: 'page_minute', chart: 'bar', x: 'minutes', y: 'views', series: 'pages' },
          ],
        },
      }),
    );
    expect(config.dashboards.get('bad')!.panels).toHaveLength(2);
    const views = await compileViews(config);
    expect(() => checkDashboards(config.dashboards, views)).toThrow(ConfigError);
    expect(() => checkDashboards(config.dashboards, views)).toThrow(
      'dashboards.bad.panels.1.x: "minutes" is not a column of view "page_minute" (columns: page, minute, views); ' +
        'dashboards.bad.panels.1.series: "pages" is not a column of view "page_minute"',
    );
  });

  it('stops the server from getting ready', async () => {
    const dir = await tempDir();
    const strata = await Strata.open({
      config: parseConfig(consoleConfig({ d: { panels: [{ view: 'page_minute', chart: 'number', y: 'clicks' }] } })),
      dataDir: dir,
    });
    const app = createHttpServer(strata);
    try {
      await expect(app.ready()).rejects.toThrow(/dashboards\.d\.panels\.0\.y: "clicks" is not a column of view "page_minute"/);
    } finally {
      await app.close().catch(() => {});
      await strata.close();
      await removeDir(dir);
    }
  });
});

async function waitUntil(check: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
