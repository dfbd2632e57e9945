import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/index.js';
import { consoleDir } from '../../src/http/console-routes.js';
import { fetchWithoutToken, TEST_ADMIN_TOKEN } from '../fixtures/auth.js';
import { postRecords, removeDir, startInProcess, tempDir, waitForDelivery, type RunningStrata } from '../fixtures/strata.js';

/** Debian's Chromium, which `.ci/run` installs; Playwright's own browser downloads are not reachable here. */
const CHROMIUM = process.env.STRATA_CHROMIUM ?? '/usr/bin/chromium';
const SCREENSHOTS = join('test-output', 'web');

/** The example project `npm start` runs, with delivery sealing chunks quickly so SQL sees rows soon. */
async function exampleConfig(): Promise<ConfigInput> {
  const config = JSON.parse(await readFile('examples/clickstream/strata.config.json', 'utf8')) as ConfigInput;
  return { ...config, delivery: { maxSeconds: 0.2 } };
}

const PAGES = ['/', '/home', '/cart', '/checkout', '/search'];
let nextId = 0;

/** Click events at `minute` minutes after `base`, spread over the pages. */
function clicks(count: number, base: number, minute: number, page?: string) {
  return Array.from({ length: count }, (_, i) => {
    const id = nextId++;
    // Skewed toward the first pages, as real traffic is, so the series differ.
    const p = page ?? PAGES[Math.floor(PAGES.length * ((id * 37) % 100 / 100) ** 2)]!;
    return {
      event_id: `e${id}`,
      ts: new Date(base + minute * 60_000 + (i % 60) * 1000).toISOString(),
      user_id: `u${id % 50}`,
      page: p,
      amount: p === '/checkout' ? 10 + (id % 7) : null,
    };
  });
}

/** Logs in through the URL `strata start` prints and answers the session id of the cookie it sets. */
async function sessionId(server: RunningStrata, token: string): Promise<string> {
  const response = await fetchWithoutToken(`${server.url}/?token=${token}`, { redirect: 'manual' });
  return /^strata_session=([^;]+)/.exec(response.headers.get('set-cookie') ?? '')![1]!;
}

async function ingest(server: RunningStrata, events: object[]): Promise<void> {
  const answer = await postRecords(server.url, 'clicks', JSON.stringify(events));
  expect(answer.status).toBe(200);
  expect((answer.body as { failed: number }).failed).toBe(0);
}

describe('the web console in Chromium', () => {
  let dir: string;
  let server: RunningStrata;
  let browser: Browser;
  let page: Page;
  const errors: string[] = [];
  /** Half an hour ago, on a minute boundary: the events' minutes stay in the past. */
  const base = Math.floor(Date.now() / 60_000) * 60_000 - 30 * 60_000;

  beforeAll(async () => {
    if (consoleDir() === null) throw new Error('the web console is not built: run `npm run build` (npm test does) before these tests');
    await mkdir(SCREENSHOTS, { recursive: true });
    dir = await tempDir();
    server = await startInProcess(await exampleConfig(), dir);
    browser = await chromium.launch({ executablePath: CHROMIUM });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (dir) await removeDir(dir);
  });

  beforeEach(async () => {
    errors.length = 0;
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    // Logged in as the test admin: the session cookie the login URL sets (its own test below goes through the form).
    await page.context().addCookies([{ name: 'strata_session', value: await sessionId(server, TEST_ADMIN_TOKEN), url: server.url }]);
    page.on('pageerror', (error) => errors.push(String(error)));
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(message.text());
    });
  });

  afterEach(async () => {
    await page.close();
    // No script error on any page, and no failed request (a 404 asset, a refused API call).
    expect(errors).toEqual([]);
  });

  it('without a session shows the login form; the login URL and the form log in, with only the pages the token may use', async () => {
    await page.context().clearCookies();
    await page.goto(`${server.url}/`);
    await page.locator('form.login').waitFor();
    expect(await page.locator('#nav a').count()).toBe(0);

    // The form: a wrong token is refused in place, a right one reloads the console as that token.
    const analyst = ((await (await fetch(`${server.url}/v1/tokens`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'analyst_web', policies: ['analyst'] }) })).json()) as { token: string }).token;
    // The browser reports a refused login (401) as a failed request: expected here.
    await page.fill('form.login input', 'not-a-token');
    await page.click('form.login button');
    await expect.poll(() => page.locator('p.error').textContent()).toContain('not valid');
    errors.length = 0;
    await page.fill('form.login input', analyst);
    await page.click('form.login button');
    await page.locator('.who').waitFor();
    expect(await page.locator('.who').textContent()).toContain('analyst_web');
    // The analyst may read views and query, not see the streams' status pages it has no use for: no Alerts (admin).
    expect(await page.locator('#nav a').allTextContents()).toEqual(expect.arrayContaining(['Overview', 'Views', 'Dashboards', 'SQL', 'Catalog']));
    expect(await page.locator('#nav a').allTextContents()).not.toContain('Alerts');

    // The URL `strata start` prints: the token leaves the address bar at once.
    await page.context().clearCookies();
    await page.goto(`${server.url}/sql?token=${TEST_ADMIN_TOKEN}`);
    expect(new URL(page.url()).search).toBe('');
    expect(new URL(page.url()).pathname).toBe('/sql');
    await page.locator('.who').waitFor();
    expect(await page.locator('.who').textContent()).toContain('admin');
  });

  it('the overview shows a rising ingest count while events flow', async () => {
    await page.goto(`${server.url}/`);
    const accepted = page.locator('[data-stream="clicks"] [data-figure="accepted"] .value');
    await accepted.waitFor();
    const read = async () => Number((await accepted.textContent())!.replace(/,/g, ''));
    const seen: number[] = [await read()];
    let minute = 0;
    const producer = setInterval(() => void ingest(server, clicks(50, base, minute++ % 5)).catch(() => {}), 150);
    try {
      // Three ever larger figures, each drawn by a poll of the page (no reload).
      await expect.poll(async () => {
        const value = await read();
        if (value > seen.at(-1)!) seen.push(value);
        return seen.length;
      }, { timeout: 15_000, interval: 200 }).toBeGreaterThanOrEqual(3);
    } finally {
      clearInterval(producer);
    }
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    await expect.poll(() => page.locator('[data-box="log"]').textContent()).toMatch(/\d+ records/);
    expect(await page.locator('[data-view="page_minute"]').count()).toBe(1);
    await page.screenshot({ path: join(SCREENSHOTS, 'overview.png'), fullPage: true });
  });

  it("a view page's chart gains points without a reload", async () => {
    // Everything so far goes into a batch version: the chart starts as the batch layer alone.
    await ingest(server, clicks(100, base, 6));
    await waitForDelivery(server);
    expect((await server.strata.batch.run()).state).toBe('succeeded');
    await page.goto(`${server.url}/views/page_minute`);
    const chart = page.locator('.chart[data-updates]');
    await chart.waitFor();
    await page.evaluate(() => ((globalThis as unknown as { loadedOnce: boolean }).loadedOnce = true));
    const points = async () => Number(await chart.getAttribute('data-points'));
    const speedPoints = async () => Number(await chart.getAttribute('data-speed-points'));
    await expect.poll(points, { timeout: 10_000 }).toBeGreaterThan(0);
    const before = await points();
    expect(await speedPoints()).toBe(0);
    // The batch watermark is marked on the time axis.
    await expect.poll(() => chart.getAttribute('data-marker'), { timeout: 10_000 }).toMatch(/^batch v\d+ W$/);
    // New minutes arrive through the speed layer; the page hears of them over server-sent events and draws
    // them as the speed part of their series.
    await ingest(server, [...clicks(40, base, 7), ...clicks(40, base, 8), ...clicks(40, base, 9)]);
    await expect.poll(points, { timeout: 10_000 }).toBeGreaterThan(before);
    await expect.poll(speedPoints, { timeout: 10_000 }).toBeGreaterThan(0);
    expect(await page.evaluate(() => (globalThis as unknown as { loadedOnce?: boolean }).loadedOnce)).toBe(true);
    // The rows table and the provenance line follow the stream too.
    expect(await page.locator('table.rows tbody tr').count()).toBeGreaterThan(0);
    expect(await page.locator('[data-testid="provenance"]').textContent()).toMatch(/batch .* · W/);
    await page.screenshot({ path: join(SCREENSHOTS, 'view-page_minute.png'), fullPage: true });

    // The layer switch and a filter on a group-by column open a new stream with those parameters.
    await page.click('[data-layer="speed"]');
    await page.selectOption('[data-filter="page"]', '/cart');
    await expect.poll(async () => {
      const pages = await page.locator('table.rows tbody tr td:first-child').allTextContents();
      return pages.length > 0 && pages.every((p) => p === '/cart');
    }, { timeout: 10_000 }).toBe(true);
  });

  it('a dashboard from the example config renders every panel', async () => {
    await ingest(server, clicks(200, base, 10));
    const config = await exampleConfig();
    const panels = Object.values(config.dashboards ?? {})[0]!.panels;
    const name = Object.keys(config.dashboards ?? {})[0]!;
    expect(new Set(panels.map((panel) => panel.chart))).toEqual(new Set(['line', 'bar', 'area', 'number', 'table']));
    await page.goto(`${server.url}/dashboards/${name}`);
    const all = page.locator('section.panel');
    await expect.poll(() => all.count()).toBe(panels.length);
    await expect.poll(() => page.locator('section.panel[data-state="ready"]').count(), { timeout: 15_000 }).toBe(panels.length);
    for (const [i, panel] of panels.entries()) {
      const element = page.locator(`section.panel[data-panel="${i}"]`);
      expect(await element.getAttribute('data-chart')).toBe(panel.chart);
      if (panel.chart === 'number') {
        expect(Number(await element.locator('.big-number').getAttribute('data-value'))).toBeGreaterThan(0);
      } else if (panel.chart === 'table') {
        expect(await element.locator('tbody tr').count()).toBeGreaterThan(0);
      } else {
        expect(await element.locator('canvas').count()).toBe(1);
        expect(Number(await element.locator('.chart').getAttribute('data-points'))).toBeGreaterThan(0);
      }
    }
    await page.screenshot({ path: join(SCREENSHOTS, `dashboard-${name}.png`), fullPage: true });
  });

  it('a SQL query run from the console shows the right row count', async () => {
    await ingest(server, clicks(37, base, 12, '/sql-console'));
    await waitForDelivery(server);
    await page.goto(`${server.url}/sql`);
    await page.fill('textarea.editor', "SELECT event_id, ts, CAST(length(event_id) AS DOUBLE) / 2 AS score FROM clicks WHERE page = '/sql-console' ORDER BY ts");
    await page.click('[data-testid="sql-run"]');
    const status = page.locator('[data-testid="sql-status"]');
    await expect.poll(() => status.getAttribute('data-rows'), { timeout: 15_000 }).toBe('37');
    expect(await status.textContent()).toMatch(/^37 rows in/);
    expect(await page.locator('table.rows tbody tr').count()).toBe(37);
    // Column types under the names, and the query in the history.
    expect(await page.locator('table.rows thead th').allTextContents()).toEqual(['event_idVARCHAR', 'tsTIMESTAMP', 'scoreDOUBLE']);
    expect(await page.locator('ol.history li').first().textContent()).toContain("page = '/sql-console'");
    // The quick chart: the score over time.
    expect(await page.locator('.quick-chart canvas').count()).toBe(1);
    expect(Number(await page.locator('.quick-chart .chart').getAttribute('data-points'))).toBe(37);
    await page.screenshot({ path: join(SCREENSHOTS, 'sql.png'), fullPage: true });

    // The result as CSV, a header and a line per row, without running the query again.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('[data-testid="sql-csv"]')]);
    const csv = await readFile((await download.path())!, 'utf8');
    expect(csv.split('\r\n').filter(Boolean)).toHaveLength(38);
    expect(csv.startsWith('event_id,ts,score\r\n')).toBe(true);

    // A long query is cancelled from the console.
    await page.fill('textarea.editor', 'SELECT count(*) FROM range(100000000000) AS r(i) WHERE i % 7 = 3');
    await page.click('[data-testid="sql-run"]');
    await expect.poll(() => status.textContent()).toBe('running…');
    await page.click('[data-testid="sql-cancel"]');
    await expect.poll(() => status.textContent(), { timeout: 5_000 }).toBe('cancelled');
  });

  it('the catalog page lists the tables, and starts a batch run whose version it then lists', async () => {
    await waitForDelivery(server);
    await page.goto(`${server.url}/catalog`);
    await page.locator('[data-table="clicks"]').waitFor();
    expect(await page.locator('[data-table="clicks"] td').nth(1).textContent()).toBe('raw');
    await page.click('text=Start a batch run');
    await page.locator('tr[data-run][data-state="succeeded"]').waitFor({ timeout: 30_000 });
    await expect.poll(() => page.locator('[data-view-versions="page_minute"] tbody tr').count(), { timeout: 10_000 }).toBeGreaterThan(0);
    expect(await page.locator('[data-view-versions="page_minute"] tr.current td').first().textContent()).toMatch(/^v\d+ \(current\)$/);
    await page.screenshot({ path: join(SCREENSHOTS, 'catalog.png'), fullPage: true });

    await page.click('[data-table="clicks"] a');
    await page.locator('[data-detail="clicks"]').waitFor();
    expect(await page.locator('[data-detail="clicks"] h3').allTextContents()).toEqual(['Schema versions', 'Partitions', expect.stringMatching(/^Chunks \(\d+/)]);
    expect(page.url()).toBe(`${server.url}/catalog/clicks`);
    await page.screenshot({ path: join(SCREENSHOTS, 'catalog-clicks.png'), fullPage: true });
  });
});
