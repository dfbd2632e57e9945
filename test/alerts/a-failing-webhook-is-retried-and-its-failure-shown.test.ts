import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backoffDelay, MAX_BACKOFF_MS } from '../../src/alerts/index.js';
import { clicksConfig, removeDir, seededRandom, startInProcess, tempDir, type RunningStrata } from '../fixtures/strata.js';
import { click, closedPort, ingestClicks, waitForAlert, WebhookReceiver } from './support.js';

const VIEW = 'SELECT page, count(*) AS views FROM clicks GROUP BY page';

describe('webhook delivery', () => {
  let dir: string;
  let server: RunningStrata;
  let receiver: WebhookReceiver;
  let refusedUrl: string;

  beforeAll(async () => {
    receiver = await WebhookReceiver.start();
    // Three 500s, then 200: delivered at the fourth attempt.
    receiver.plan('/flaky', [500, 500, 500]);
    // Always 500.
    receiver.plan('/down', [], 500);
    // A 404 does not change on a retry.
    receiver.plan('/gone', [], 404);
    refusedUrl = `http://127.0.0.1:${await closedPort()}/hook`;
    dir = await tempDir();
    const rule = (webhook: string, attempts: number) => ({
      view: 'hits',
      where: "page = '/checkout'",
      measure: 'views',
      above: 0,
      notify: { webhook, attempts, backoff: '20ms', timeout: '2s' },
    });
    server = await startInProcess(
      clicksConfig(
        {
          speed: { intervalMs: 50 },
          views: { hits: VIEW },
          alerts: {
            flaky: rule(`${receiver.url}/flaky`, 5),
            down: rule(`${receiver.url}/down`, 3),
            gone: rule(`${receiver.url}/gone`, 5),
            refused: rule(refusedUrl, 2),
          },
        },
        1,
      ),
      dir,
    );
    // One checkout view: every rule fires at once (above 0, no `for`).
    await ingestClicks(server, [click('c1', '/checkout', 0)]);
  });

  afterAll(async () => {
    await server?.close();
    await receiver?.close();
    if (dir) await removeDir(dir);
  });

  it('retries a webhook answering 500 until it answers 200, sending the same event each time', async () => {
    const alert = await waitForAlert(server, 'flaky', (a) => a.lastNotification?.delivery.state === 'delivered');
    expect(alert.lastNotification!.delivery).toMatchObject({ attempts: 4, lastStatus: 200, lastError: null });
    const requests = receiver.on('/flaky');
    expect(requests.map((r) => r.status)).toEqual([500, 500, 500, 200]);
    expect(new Set(requests.map((r) => JSON.stringify(r.body))).size).toBe(1);
    expect(new Set(requests.map((r) => r.headers['x-strata-event'])).size).toBe(1);
    expect(requests[0]!.body).toMatchObject({ alert: 'flaky', state: 'firing', value: 1, threshold: 0 });
  });

  it('shows a permanently failing webhook as failed in GET /v1/alerts, with its attempts and last error', async () => {
    const alert = await waitForAlert(server, 'down', (a) => a.lastNotification?.delivery.state === 'failed');
    // The rule itself fired: a failing webhook does not change what the rule says.
    expect(alert.state).toBe('firing');
    expect(alert.lastNotification!.delivery).toMatchObject({ attempts: 3, lastStatus: 500, lastError: 'HTTP 500 Internal Server Error' });
    expect(alert.lastNotification!.delivery.finishedAt).not.toBeNull();
    expect(receiver.on('/down')).toHaveLength(3);
  });

  it('does not retry an answer a retry cannot change', async () => {
    const alert = await waitForAlert(server, 'gone', (a) => a.lastNotification?.delivery.state === 'failed');
    expect(alert.lastNotification!.delivery).toMatchObject({ attempts: 1, lastStatus: 404, lastError: 'HTTP 404 Not Found' });
    expect(receiver.on('/gone')).toHaveLength(1);
  });

  it('names a refused connection', async () => {
    const alert = await waitForAlert(server, 'refused', (a) => a.lastNotification?.delivery.state === 'failed');
    expect(alert.lastNotification!.delivery).toMatchObject({ attempts: 2, lastStatus: null });
    expect(alert.lastNotification!.delivery.lastError).toMatch(/ECONNREFUSED/);
    // The webhook is shown by its origin alone: a path may carry a token.
    expect(alert.webhook).toBe(new URL(refusedUrl).origin);
  });

  it('backs off exponentially with jitter, between half and all of the nominal wait, up to a cap', () => {
    const seed = 6;
    const random = seededRandom(seed);
    for (let retry = 1; retry <= 12; retry++) {
      const nominal = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (retry - 1));
      const delay = backoffDelay(retry, 1000, random);
      expect(delay, `seed ${seed}, retry ${retry}`).toBeGreaterThanOrEqual(nominal / 2);
      expect(delay, `seed ${seed}, retry ${retry}`).toBeLessThanOrEqual(nominal);
    }
  });
});
