import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/index.js';
import { consoleDir } from '../../src/http/console-routes.js';
import { authHeaders, click, ingestClicks, WebhookReceiver } from '../alerts/support.js';
import { removeDir, startInProcess, tempDir, type RunningStrata } from '../fixtures/strata.js';

/** Debian's Chromium, which `.ci/run` installs; Playwright's own browser downloads are not reachable here. */
const CHROMIUM = process.env.STRATA_CHROMIUM ?? '/usr/bin/chromium';
const SCREENSHOTS = join('test-output', 'web');

describe('the Alerts page in Chromium', () => {
  let dir: string;
  let server: RunningStrata;
  let receiver: WebhookReceiver;
  let browser: Browser;

  beforeAll(async () => {
    if (consoleDir() === null) throw new Error('the web console is not built: run `npm run build` (npm test does) before these tests');
    await mkdir(SCREENSHOTS, { recursive: true });
    receiver = await WebhookReceiver.start();
    // The example project, with the README's alert pointed at a receiver on this machine.
    const config = JSON.parse(await readFile('examples/clickstream/strata.config.json', 'utf8')) as ConfigInput;
    const alerts = {
      checkout_busy: { view: 'page_minute', where: "page = '/checkout'", measure: 'views', above: 3, for: '300ms', notify: { webhook: `${receiver.url}/hook` } },
    };
    dir = await tempDir();
    server = await startInProcess({ ...config, speed: { intervalMs: 100 }, alerts }, dir);
    browser = await chromium.launch({ executablePath: CHROMIUM });
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await receiver?.close();
    if (dir) await removeDir(dir);
  });

  it('lists the rules with their state and value, and shows them fire live', async () => {
    const errors: string[] = [];
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('pageerror', (error) => errors.push(String(error)));
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(message.text());
    });
    // Every request of the page carries the test's token, whether or not this Strata asks for one.
    await page.setExtraHTTPHeaders(authHeaders(server));
    try {
      await page.goto(`${server.url}/`);
      await page.click('#nav a:text-is("Alerts")');
      const row = page.locator('tr[data-alert="checkout_busy"]');
      await row.waitFor();
      expect(await page.locator('#nav a.active').textContent()).toBe('Alerts');
      expect(await row.getAttribute('data-state')).toBe('ok');
      expect(await row.locator('code').textContent()).toBe("views above 3 for 300 ms where page = '/checkout'");
      // Five checkout views in the latest minute: the page, polling, shows the rule fire and its delivered event.
      await ingestClicks(server, Array.from({ length: 5 }, (_, i) => click(`c${i}`, '/checkout', 1, i)));
      await expect.poll(() => row.getAttribute('data-state'), { timeout: 15_000 }).toBe('firing');
      await expect.poll(() => row.locator('td[data-value]').getAttribute('data-value')).toBe('5');
      await expect.poll(() => page.locator('[data-testid="alert-events"] [data-delivery]').first().getAttribute('data-delivery'), { timeout: 10_000 }).toBe('delivered');
      expect(receiver.on('/hook').map((r) => r.body.state)).toEqual(['firing']);
      await page.screenshot({ path: join(SCREENSHOTS, 'alerts.png'), fullPage: true });
      expect(errors).toEqual([]);
    } finally {
      await page.close();
    }
  });
});
