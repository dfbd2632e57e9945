import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AlertEvaluator, compileAlerts, type AlertEvaluatorOptions } from '../../src/alerts/index.js';
import { parseConfig, type ConfigInput } from '../../src/config/index.js';
import type { ViewSnapshot } from '../../src/speed/index.js';
import { compileViews } from '../../src/views/index.js';
import { clicksConfig } from '../fixtures/strata.js';
import { WebhookReceiver } from './support.js';

const PAGE_MINUTE = "SELECT page, time_bucket(INTERVAL '1 minute', ts) AS minute, count(*) AS views FROM clicks GROUP BY page, minute";

/**
 * The evaluator over a stand-in for the speed layer: the view's partials are a table this test writes, and the
 * clock is the test's, so that `for` is stepped exactly rather than waited for.
 */
describe('the alert state machine', () => {
  let instance: DuckDBInstance;
  let connection: DuckDBConnection;
  let receiver: WebhookReceiver;
  let evaluator: AlertEvaluator | null = null;
  let clock = 0;
  let seq = 0;

  const speed: AlertEvaluatorOptions['speed'] = {
    withSnapshot: async <T>(_name: string, read: (snapshot: ViewSnapshot, connection: DuckDBConnection) => Promise<T>) => {
      const relations = { scalar: 'SELECT * FROM partials', sketches: {} };
      const snapshot = {
        view: views.get('page_minute')!,
        batchVersion: null,
        speedSeq: { '0': seq },
        empty: { scalar: 'SELECT * FROM partials WHERE false', sketches: {} },
        merged: relations,
        speed: relations,
      } as unknown as ViewSnapshot;
      return read(snapshot, connection);
    },
  };
  let views: Awaited<ReturnType<typeof compileViews>>;

  /** Sets checkout's views in the latest minute; a new seq tells the evaluator the snapshot changed. */
  const checkoutViews = async (count: number) => {
    await connection.run('DELETE FROM partials');
    await connection.run(`INSERT INTO partials VALUES ('/checkout', TIMESTAMP '2026-11-25 10:01:00', ${count}), ('/home', TIMESTAMP '2026-11-25 10:01:00', 50)`);
    seq++;
  };

  const open = async (alert: Record<string, unknown>) => {
    const input: ConfigInput = clicksConfig({
      views: { page_minute: PAGE_MINUTE },
      alerts: { drop: { view: 'page_minute', where: "page = '/checkout'", measure: 'views', notify: { webhook: `${receiver.url}/drop` }, ...alert } as never },
    });
    const config = parseConfig(input);
    views = await compileViews(config);
    const rules = await compileAlerts(config.alerts, views);
    evaluator = await AlertEvaluator.open({ rules, speed, intervalMs: 60_000, now: () => clock });
    return evaluator;
  };

  const step = async (at: number) => {
    clock = at;
    await evaluator!.evaluate();
    return evaluator!.status()[0]!;
  };

  beforeAll(async () => {
    receiver = await WebhookReceiver.start();
    instance = await DuckDBInstance.create(':memory:');
    connection = await instance.connect();
    await connection.run('CREATE TABLE partials (page VARCHAR, minute TIMESTAMP, views BIGINT)');
  });

  afterEach(async () => {
    await evaluator?.close();
    evaluator = null;
    receiver.requests.length = 0;
    clock = 0;
  });

  afterAll(async () => {
    connection?.closeSync();
    instance?.closeSync();
    await receiver?.close();
  });

  it('goes pending when the condition first holds, and fires only once it held for `for`', async () => {
    await checkoutViews(3);
    await open({ below: 10, for: '300ms' });
    expect(await step(1000)).toMatchObject({ state: 'pending', value: 3, since: new Date(1000).toISOString(), firesAt: new Date(1300).toISOString() });
    expect(await step(1299)).toMatchObject({ state: 'pending', since: new Date(1000).toISOString(), events: [] });
    const firing = await step(1300);
    expect(firing).toMatchObject({ state: 'firing', since: new Date(1300).toISOString(), firesAt: null });
    expect(firing.events.map((e) => e.event)).toEqual([
      { alert: 'drop', state: 'firing', value: 3, threshold: 10, view: 'page_minute', measure: 'views', at: new Date(1300).toISOString() },
    ]);
    // Held on: no second event.
    expect((await step(5000)).events).toHaveLength(1);
    await checkoutViews(12);
    const ok = await step(6000);
    expect(ok).toMatchObject({ state: 'ok', value: 12, since: new Date(6000).toISOString() });
    expect(ok.events.map((e) => [e.event.state, e.event.value])).toEqual([['resolved', 12], ['firing', 3]]);
    await evaluator!.close();
    expect(receiver.on('/drop').map((r) => r.body.state)).toEqual(['firing', 'resolved']);
  });

  it('goes back to ok without an event when the condition breaks before `for`', async () => {
    await checkoutViews(3);
    await open({ below: 10, for: '2m' });
    expect((await step(0)).state).toBe('pending');
    await checkoutViews(20);
    expect(await step(60_000)).toMatchObject({ state: 'ok', events: [] });
    // Holding again starts `for` over.
    await checkoutViews(2);
    expect(await step(70_000)).toMatchObject({ state: 'pending', since: new Date(70_000).toISOString() });
    expect((await step(70_000 + 119_999)).state).toBe('pending');
    expect((await step(70_000 + 120_000)).state).toBe('firing');
  });

  it('fires at once without `for`, and compares strictly', async () => {
    await checkoutViews(10);
    await open({ above: 10 });
    expect((await step(0)).state).toBe('ok');
    await checkoutViews(11);
    expect((await step(1)).state).toBe('firing');
  });

  it('keeps its state and shows the error while an evaluation fails', async () => {
    await checkoutViews(3);
    await open({ below: 10 });
    expect((await step(0)).state).toBe('firing');
    await connection.run('ALTER TABLE partials RENAME TO partials_away');
    seq++;
    try {
      const failing = await step(1000);
      expect(failing.state).toBe('firing');
      expect(failing.error).toMatch(/partials/);
      expect(failing.events).toHaveLength(1);
    } finally {
      await connection.run('ALTER TABLE partials_away RENAME TO partials');
    }
    seq++;
    expect(await step(2000)).toMatchObject({ state: 'firing', error: null });
  });
});
