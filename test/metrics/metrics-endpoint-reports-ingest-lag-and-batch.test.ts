import { afterEach, describe, expect, it } from 'vitest';
import { clicksConfig, postRecords, removeDir, startInProcess, tempDir, waitForDelivery, type RunningStrata } from '../fixtures/strata.js';

const PAGE_MINUTE = "SELECT page, time_bucket(INTERVAL '1 minute', ts) AS minute, count(*) AS views FROM clicks GROUP BY page, minute";

/** One sample of the Prometheus text format: `name{label="v",...} value`. */
interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

interface Scrape {
  readonly samples: readonly Sample[];
  /** `# TYPE` per metric family. */
  readonly types: ReadonlyMap<string, string>;
  /** The one sample of `name` whose labels include `labels`; undefined when there is none. */
  value(name: string, labels?: Record<string, string>): number | undefined;
}

async function scrape(url: string): Promise<Scrape> {
  const response = await fetch(`${url}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of (await response.text()).split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) types.set(type[1]!, type[2]!);
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, m[2]!]));
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return {
    samples,
    types,
    value(name, labels = {}) {
      const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
      if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`);
      return found[0]?.value;
    },
  };
}

const clicks = (n: number, from = 0) =>
  Array.from({ length: n }, (_, i) => ({ event_id: `e${from + i}`, ts: '2026-11-25T10:00:00Z', user_id: `u${i % 7}`, page: `/p${i % 3}`, amount: 1 }));

describe('GET /metrics', () => {
  let dirs: string[] = [];
  let servers: RunningStrata[] = [];
  afterEach(async () => {
    for (const server of servers) await server.close();
    for (const dir of dirs) await removeDir(dir);
    servers = [];
    dirs = [];
  });

  async function start(input: Parameters<typeof startInProcess>[0]): Promise<RunningStrata> {
    const dir = await tempDir();
    dirs.push(dir);
    const server = await startInProcess(input, dir);
    servers.push(server);
    return server;
  }

  it('counts ingested records, bytes and refused records per stream, with the ack latency and the delivery lag', async () => {
    // Delivery waits an hour: every record stays undelivered, so the lag is exactly the records ingested.
    const server = await start(clicksConfig({ delivery: { maxSeconds: 3600 } }, 2));
    expect((await postRecords(server.url, 'clicks', JSON.stringify(clicks(10)))).status).toBe(200);
    const mixed = [...clicks(5, 10), { event_id: 'bad', ts: 'not a time', user_id: 'u', page: '/' }, { page: '/missing-fields' }];
    const answer = await postRecords(server.url, 'clicks', JSON.stringify(mixed));
    expect(answer.body).toMatchObject({ failed: 2 });
    expect((await postRecords(server.url, 'clicks', '{not json')).status).toBe(400);
    expect((await postRecords(server.url, 'nope', '{}')).status).toBe(404);
    await new Promise((resolve) => setTimeout(resolve, 50));

    const metrics = await scrape(server.url);
    expect(metrics.types.get('strata_ingest_records_total')).toBe('counter');
    expect(metrics.value('strata_ingest_records_total', { stream: 'clicks' })).toBe(15);
    expect(metrics.value('strata_ingest_record_errors_total', { stream: 'clicks' })).toBe(2);
    expect(metrics.value('strata_ingest_bytes_total', { stream: 'clicks' })).toBe(server.strata.ingestor.stats('clicks').bytes);
    expect(metrics.value('strata_ingest_bytes_total', { stream: 'clicks' })).toBeGreaterThan(15 * 50);
    expect(metrics.value('strata_ingest_requests_total', { stream: 'clicks', code: '200' })).toBe(2);
    expect(metrics.value('strata_ingest_requests_total', { stream: 'clicks', code: '400' })).toBe(1);
    // A stream name from a URL never becomes a label: only configured streams do.
    expect(metrics.samples.some((s) => s.labels.stream === 'nope')).toBe(false);

    expect(metrics.types.get('strata_ingest_ack_seconds')).toBe('histogram');
    expect(metrics.value('strata_ingest_ack_seconds_count', { stream: 'clicks' })).toBe(2);
    expect(metrics.value('strata_ingest_ack_seconds_bucket', { stream: 'clicks', le: '+Inf' })).toBe(2);
    expect(metrics.value('strata_ingest_ack_seconds_sum', { stream: 'clicks' })).toBeGreaterThan(0);

    const lagRecords = ['0', '1'].map((shard) => metrics.value('strata_delivery_lag_records', { stream: 'clicks', shard }));
    expect(lagRecords.every((lag) => lag !== undefined)).toBe(true);
    expect(lagRecords.reduce((sum, lag) => sum! + lag!, 0)).toBe(15);
    const lagSeconds = ['0', '1'].map((shard) => metrics.value('strata_delivery_lag_seconds', { stream: 'clicks', shard })!);
    expect(Math.max(...lagSeconds)).toBeGreaterThan(0);
  });

  it('shows batch versions, their publish time, speed lag and freshness per view, and query latency by route', async () => {
    const server = await start(clicksConfig({ delivery: { maxSeconds: 0.1 }, views: { page_minute: PAGE_MINUTE } }, 2));
    let metrics = await scrape(server.url);
    expect(metrics.value('strata_batch_version', { view: 'page_minute' })).toBe(0);
    expect(metrics.value('strata_batch_last_success_timestamp_seconds', { view: 'page_minute' })).toBeUndefined();

    await postRecords(server.url, 'clicks', JSON.stringify(clicks(40)));
    await waitForDelivery(server);
    const before = Date.now() / 1000;
    const run = await server.strata.batch.run();
    expect(run.state).toBe('succeeded');
    const after = Date.now() / 1000;

    const view = await fetch(`${server.url}/v1/views/page_minute`);
    expect(view.status).toBe(200);
    const sql = await fetch(`${server.url}/v1/sql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sql: 'SELECT count(*) AS n FROM clicks' }),
    });
    expect(sql.status).toBe(200);
    await Promise.all([view.text(), sql.text()]);
    await new Promise((resolve) => setTimeout(resolve, 50));

    metrics = await scrape(server.url);
    expect(metrics.value('strata_batch_version', { view: 'page_minute' })).toBe(1);
    const published = metrics.value('strata_batch_last_success_timestamp_seconds', { view: 'page_minute' })!;
    expect(published).toBeGreaterThanOrEqual(Math.floor(before));
    expect(published).toBeLessThanOrEqual(after);
    const runSeconds = (Date.parse(run.finishedAt!) - Date.parse(run.startedAt)) / 1000;
    expect(metrics.value('strata_batch_last_run_duration_seconds', { view: 'page_minute', state: 'succeeded' })).toBeCloseTo(runSeconds, 3);
    for (const shard of ['0', '1']) {
      // W covers every delivered record and nothing more arrived: nothing is past it.
      expect(metrics.value('strata_batch_lag_records', { view: 'page_minute', shard })).toBe(0);
      expect(metrics.value('strata_speed_lag_records', { view: 'page_minute', shard })).toBeGreaterThanOrEqual(0);
    }
    expect(metrics.value('strata_view_freshness_seconds', { view: 'page_minute' })).toBeGreaterThanOrEqual(0);

    expect(metrics.types.get('strata_http_query_seconds')).toBe('histogram');
    expect(metrics.value('strata_http_query_seconds_count', { route: '/v1/views/:view' })).toBe(1);
    expect(metrics.value('strata_http_query_seconds_count', { route: '/v1/sql' })).toBe(1);
    // Only the query routes are measured.
    expect(metrics.samples.filter((s) => s.name === 'strata_http_query_seconds_count').map((s) => s.labels.route).sort()).toEqual([
      '/v1/sql',
      '/v1/views/:view',
    ]);
  });

  it('reports the speed lag of records past W until the speed layer applies them', async () => {
    const server = await start(clicksConfig({ delivery: { maxSeconds: 3600 }, views: { page_minute: PAGE_MINUTE } }, 1));
    await postRecords(server.url, 'clicks', JSON.stringify(clicks(25)));
    // No batch version: W is 0, so every record is past it.
    let metrics = await scrape(server.url);
    expect(metrics.value('strata_batch_lag_records', { view: 'page_minute', shard: '0' })).toBe(25);
    // The speed layer catches up within its interval; a serving read makes it apply what is durable.
    const deadline = Date.now() + 20_000;
    for (;;) {
      metrics = await scrape(server.url);
      if (metrics.value('strata_speed_lag_records', { view: 'page_minute', shard: '0' }) === 0 || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(metrics.value('strata_speed_lag_records', { view: 'page_minute', shard: '0' })).toBe(0);
    expect(metrics.value('strata_view_freshness_seconds', { view: 'page_minute' })).toBe(0);
  });

  it('keeps one registry per Strata: two instances in one process count apart', async () => {
    const a = await start(clicksConfig({ delivery: { maxSeconds: 3600 } }, 1));
    const b = await start(clicksConfig({ delivery: { maxSeconds: 3600 } }, 1));
    await postRecords(a.url, 'clicks', JSON.stringify(clicks(3)));
    await postRecords(b.url, 'clicks', JSON.stringify(clicks(7)));
    expect((await scrape(a.url)).value('strata_ingest_records_total', { stream: 'clicks' })).toBe(3);
    expect((await scrape(b.url)).value('strata_ingest_records_total', { stream: 'clicks' })).toBe(7);
  });
});
