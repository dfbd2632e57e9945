import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clicksConfig, removeDir, startInProcess, tempDir, waitForDelivery, type RunningStrata } from '../fixtures/strata.js';
import { click, get, ingestClicks, waitForAlert, WebhookReceiver } from './support.js';

const PAGE_MINUTE = `SELECT page, time_bucket(INTERVAL '1 minute', ts) AS minute, count(*) AS views, avg(amount) AS mean,
  approx_count_distinct(user_id) AS users FROM clicks GROUP BY page, minute`;

describe('an alert rule against a local webhook', () => {
  let dir: string;
  let server: RunningStrata;
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    receiver = await WebhookReceiver.start();
    dir = await tempDir();
    const notify = (path: string) => ({ webhook: `${receiver.url}${path}`, backoff: '20ms' });
    server = await startInProcess(
      clicksConfig(
        {
          delivery: { maxSeconds: 0.05 },
          speed: { intervalMs: 50 },
          views: { page_minute: PAGE_MINUTE },
          alerts: {
            checkout_busy: { view: 'page_minute', where: "page = '/checkout'", measure: 'views', above: 5, for: '300ms', notify: notify('/busy') },
            // Over several groups at once: the distinct users of both pages together, in the speed layer alone.
            shoppers: { view: 'page_minute', where: "page IN ('/cart', '/checkout')", measure: 'users', above: 100, layer: 'speed', notify: notify('/shoppers') },
          },
        },
        2,
      ),
      dir,
    );
  });

  afterAll(async () => {
    await server?.close();
    await receiver?.close();
    if (dir) await removeDir(dir);
  });

  it('starts ok, with the latest bucket of an empty view reading 0', async () => {
    const alert = await waitForAlert(server, 'checkout_busy', (a) => a.evaluatedAt !== null);
    expect(alert).toMatchObject({ state: 'ok', value: 0, timeKey: 'minute', condition: 'above', threshold: 5, forMs: 300, webhook: receiver.url, events: [] });
    expect(alert.lastNotification).toBeNull();
  });

  it('goes pending when the condition holds, fires once it held for `for`, and posts the event', async () => {
    const before = Date.now();
    // Ten checkout views and three cart views in minute 10:01: the checkout's latest bucket holds 10 > 5.
    await ingestClicks(server, [
      ...Array.from({ length: 10 }, (_, i) => click(`c${i}`, '/checkout', 1, i)),
      ...Array.from({ length: 3 }, (_, i) => click(`k${i}`, '/cart', 1, i)),
    ]);
    const firing = await waitForAlert(server, 'checkout_busy', (a) => a.state === 'firing');
    expect(firing.value).toBe(10);
    expect(firing.bucket).toBe('2026-11-25T10:01:00.000Z');
    // The event, newest first, with its delivery.
    const delivered = await waitForAlert(server, 'checkout_busy', (a) => a.lastNotification?.delivery.state === 'delivered');
    expect(delivered.events).toHaveLength(1);
    expect(delivered.lastNotification).toMatchObject({ event: { state: 'firing', value: 10 }, delivery: { state: 'delivered', attempts: 1, lastStatus: 200, lastError: null } });
    expect(receiver.on('/busy')).toHaveLength(1);
    const [posted] = receiver.on('/busy');
    expect(posted!.body).toEqual({ alert: 'checkout_busy', state: 'firing', value: 10, threshold: 5, view: 'page_minute', measure: 'views', at: firing.since });
    expect(posted!.headers['content-type']).toBe('application/json');
    expect(posted!.headers['x-strata-event']).toBe(firing.events[0]!.id);
    // Not before the condition had held for `for`: it cannot have held before the records were sent.
    expect(Date.parse(firing.since) - before).toBeGreaterThanOrEqual(300);
  });

  it('reads the same merged value once a batch run moved the records into the batch layer, and stays firing', async () => {
    await waitForDelivery(server);
    expect((await server.strata.batch.run()).state).toBe('succeeded');
    // The speed layer adopts the version: the speed partials it covers go, the batch partials hold them now.
    await waitForAlert(server, 'shoppers', (a) => a.evaluatedAt !== null && a.value === 0);
    const alert = await waitForAlert(server, 'checkout_busy', (a) => a.evaluatedAt !== null && Date.parse(a.evaluatedAt) > Date.now() - 500);
    expect(alert).toMatchObject({ state: 'firing', value: 10 });
    expect(receiver.on('/busy')).toHaveLength(1);
  });

  it('merges a sketch over every group the condition selects', async () => {
    // Users of /cart and /checkout in the latest minute, counted once each across both pages (and over 100).
    const users = Array.from({ length: 150 }, (_, i) => i);
    await ingestClicks(server, [
      ...users.map((i) => ({ ...click(`s${i}`, '/cart', 2, i % 60), user_id: `shopper${i}` })),
      ...users.map((i) => ({ ...click(`t${i}`, '/checkout', 2, i % 60), user_id: `shopper${i}` })),
    ]);
    const alert = await waitForAlert(server, 'shoppers', (a) => a.state === 'firing');
    // HyperLogLog: within a few percent of 150, and far from the 300 a sum over the pages would give.
    expect(alert.value).toBeGreaterThan(140);
    expect(alert.value).toBeLessThan(160);
    expect(alert.bucket).toBe('2026-11-25T10:02:00.000Z');
  });

  it('resolves when the condition stops holding, and posts the resolved event', async () => {
    // Minute 10:02 became the latest bucket above, with 150 checkout views: still above 5. A quiet minute
    // 10:03 with one checkout view brings the latest bucket's value to 1.
    await ingestClicks(server, [click('q1', '/checkout', 3), click('q2', '/home', 3)]);
    const ok = await waitForAlert(server, 'checkout_busy', (a) => a.state === 'ok' && a.events.length >= 2);
    expect(ok.value).toBe(1);
    expect(ok.events.map((e) => e.event.state)).toEqual(['resolved', 'firing']);
    await waitForAlert(server, 'checkout_busy', (a) => a.lastNotification?.delivery.state === 'delivered');
    const bodies = receiver.on('/busy').map((r) => r.body);
    expect(bodies.map((b) => b.state)).toEqual(['firing', 'resolved']);
    expect(bodies[1]).toMatchObject({ alert: 'checkout_busy', state: 'resolved', value: 1, threshold: 5 });
  });

  it('answers one alert by name, and 404 naming the known ones', async () => {
    const one = await get(server, '/v1/alerts/shoppers');
    expect(one.status).toBe(200);
    expect(((await one.json()) as { name: string }).name).toBe('shoppers');
    const missing = await get(server, '/v1/alerts/nope');
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { message: string } }).error.message).toMatch(/unknown alert "nope"; alerts: checkout_busy, shoppers/);
  });
});
