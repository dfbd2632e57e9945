import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/index.js';
import { clicksConfig, removeDir, startInProcess, tempDir, waitForDelivery, type RunningStrata } from '../fixtures/strata.js';
import { ingest } from '../batch/support.js';

const VIEW = 'SELECT page, count(*) AS views, sum(cents) AS cents FROM clicks GROUP BY page';

function config(map: Record<string, string>, extra: Record<string, unknown> = {}): ConfigInput {
  const base = clicksConfig({ delivery: { maxSeconds: 0.05 }, speed: { intervalMs: 50 }, views: { pages: VIEW } }, 2);
  const clicks = base.streams.clicks!;
  return {
    ...base,
    streams: {
      clicks: {
        ...clicks,
        schema: { ...clicks.schema, user_id: 'string?' },
        transform: {
          required: ['user_id'],
          standardize: { page: ['trim', 'lower'] },
          map: { page: map },
          derive: { cents: 'CAST(round(amount * 100) AS BIGINT)' },
          ...extra,
        },
      },
    },
  };
}

const events = [
  { event_id: 'a', ts: '2026-11-25T10:00:00Z', user_id: 'u1', page: ' /INDEX ', amount: 1.5 },
  { event_id: 'b', ts: '2026-11-25T10:01:00Z', user_id: 'u2', page: '/Cart', amount: 2 },
  { event_id: 'c', ts: '2026-11-25T10:02:00Z', user_id: null, page: '/cart', amount: 3 },
  { event_id: 'd', ts: '2026-11-25T10:03:00Z', user_id: 'u3', page: '/index', amount: null },
];

describe('transforms in the batch and speed layers', () => {
  let dir: string;
  let server: RunningStrata | null = null;
  afterEach(async () => {
    await server?.close();
    server = null;
    await removeDir(dir);
  });

  const rows = async (query = '') => {
    const response = await fetch(`${server!.url}/v1/views/pages${query}`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { rows: { page: string; views: string; cents: string | null }[] };
    return body.rows.map((row) => [row.page, Number(row.views), row.cents === null ? null : Number(row.cents)]);
  };
  const caughtUp = async (records: number) => {
    for (let i = 0; i < 200; i++) {
      const seqs = server!.strata.speed.status()[0]!.speedSeq;
      if (Object.values(seqs).reduce((a, b) => a + b, 0) >= records) return;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error('the speed layer did not catch up');
  };

  it('cleans records identically in both layers, quarantines what fails, and re-cleans history after a rules change', async () => {
    dir = await tempDir();
    server = await startInProcess(config({ '/index': '/home' }), dir);
    await ingest(server, events);
    await caughtUp(4);
    // Speed layer alone: standardized and mapped pages, the derived column, the record without user_id left out.
    const expectedOld = [
      ['/cart', 1, 200],
      ['/home', 2, 150],
    ];
    expect(await rows('?layer=speed')).toEqual(expectedOld);
    await waitForDelivery(server);
    expect((await server.strata.batch.run()).state).toBe('succeeded');
    expect(await rows('?layer=batch')).toEqual(expectedOld);
    expect(await rows()).toEqual(expectedOld);

    // The clean and quarantine tables in SQL: the refused record kept with its raw values and the reason.
    const quarantine = await server.strata.sql.queryAll('SELECT event_id, page, __quarantine_reason AS reason FROM clicks__quarantine');
    expect(quarantine.rows).toEqual([{ event_id: 'c', page: '/cart', reason: 'required: user_id is missing' }]);
    // Counted where operators look: GET /v1/streams (and so strata status and the console) and /metrics.
    const streams = (await (await fetch(`${server.url}/v1/streams`)).json()) as { streams: { name: string; quarantined?: number }[] };
    expect(streams.streams.find((stream) => stream.name === 'clicks')!.quarantined).toBe(1);
    expect(await (await fetch(`${server.url}/metrics`)).text()).toMatch(/^strata_quarantine_records\{stream="clicks"\} 1$/m);
    const clean = await server.strata.sql.queryAll('SELECT event_id, page, cents FROM clicks__clean ORDER BY event_id');
    expect(clean.rows).toEqual([
      { event_id: 'a', page: '/home', cents: '150' },
      { event_id: 'b', page: '/cart', cents: '200' },
      { event_id: 'd', page: '/home', cents: null },
    ]);

    // New rules: the speed layer cleans new records with them at once; the batch version keeps the old ones
    // until a run, which recomputes every partition because the rules changed.
    await server.close();
    server = await startInProcess(config({ '/index': '/start' }), dir);
    await ingest(server, [{ event_id: 'e', ts: '2026-11-25T10:04:00Z', user_id: 'u4', page: '/INDEX', amount: 1 }]);
    await caughtUp(5);
    expect(await rows('?layer=speed')).toEqual([['/start', 1, 100]]);
    expect(await rows('?layer=batch')).toEqual(expectedOld);
    await waitForDelivery(server);
    const run = await server.strata.batch.run({ fromScratch: true });
    expect(run.state).toBe('succeeded');
    expect(await rows()).toEqual([
      ['/cart', 1, 200],
      ['/start', 3, 250],
    ]);
    // Even an incremental run after a rules change recomputes every partition (the plan digest holds the rules).
    await server.close();
    server = await startInProcess(config({ '/index': '/begin' }), dir);
    const incremental = await server.strata.batch.run();
    expect(incremental.state).toBe('succeeded');
    expect(incremental.recomputed.pages).toEqual(['2026-11-25']);
    expect(await rows()).toEqual([
      ['/begin', 3, 250],
      ['/cart', 1, 200],
    ]);
  });

  it('counts a key once across shards and across the batch/speed boundary, within the window', async () => {
    dir = await tempDir();
    server = await startInProcess(config({}, { dedupe: { key: 'event_id', within: '24h' } }), dir);
    const copy = (id: string, user: string, ts = '2026-11-25T10:00:00Z') => ({ event_id: id, ts, user_id: user, page: '/a', amount: 1 });
    // Partitioned by user_id: copies sent with other user ids land on other shards.
    const shards = new Set<string>();
    let sent = 0;
    while (shards.size < 2 && sent < 20) {
      const user = `u${++sent}`;
      const answer = await fetch(`${server.url}/v1/streams/clicks/records`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(copy('x', user)),
      });
      shards.add(((await answer.json()) as { records: { shard: string }[] }).records[0]!.shard);
    }
    expect(shards.size).toBe(2);
    await caughtUp(sent);
    expect(await rows()).toEqual([['/a', 1, 100]]);
    // The first copies go into a batch version; a later copy in the speed layer does not count again.
    await waitForDelivery(server);
    expect((await server.strata.batch.run()).state).toBe('succeeded');
    await ingest(server, [copy('x', 'u5'), copy('y', 'u5')]);
    await caughtUp(sent + 2);
    expect(await rows('?layer=batch')).toEqual([['/a', 1, 100]]);
    expect(await rows('?layer=speed')).toEqual([['/a', 1, 100]]);
    expect(await rows()).toEqual([['/a', 2, 200]]);
    // A copy 25 hours later is outside the window: a new record.
    await ingest(server, [copy('x', 'u6', '2026-11-26T11:00:00Z')]);
    await caughtUp(sent + 3);
    expect(await rows()).toEqual([['/a', 3, 300]]);
    await waitForDelivery(server);
    expect((await server.strata.batch.run({ fromScratch: true })).state).toBe('succeeded');
    expect(await rows('?layer=batch')).toEqual([['/a', 3, 300]]);
    const clean = await server.strata.sql.queryAll('SELECT count(*) AS n FROM clicks__clean');
    expect(clean.rows).toEqual([{ n: '3' }]);

    // A later copy of a counted key changes nothing counted: the incremental run adds a delta for its partition
    // alone (not the day after, within the window), and the delta leaves the copy out.
    await ingest(server, [copy('y', 'u8', '2026-11-25T10:30:00Z')]);
    await caughtUp(sent + 4);
    await waitForDelivery(server);
    const delta = await server.strata.batch.run();
    expect(delta.state).toBe('succeeded');
    expect(delta.recomputed.pages).toEqual(['2026-11-25']);
    const files = (await server.strata.catalog.viewVersions('pages')).find((version) => version.current)!.files;
    expect(files.filter((file) => file.partition === '2026-11-25').map((file) => file.key.split('/').pop())).toContain('delta.parquet');
    expect(await rows('?layer=batch')).toEqual([['/a', 3, 300]]);

    // Copies on both sides of midnight: the later one is in a batch version first; the earlier one arrives
    // late and turns the counted one into a duplicate, which a delta cannot express, so the next incremental run
    // recomputes its partition and the day after, where the later copy lies.
    await ingest(server, [copy('w', 'u7', '2026-11-27T01:00:00Z')]);
    await caughtUp(sent + 5);
    await waitForDelivery(server);
    expect((await server.strata.batch.run()).state).toBe('succeeded');
    await ingest(server, [copy('w', 'u7', '2026-11-26T23:00:00Z')]);
    await caughtUp(sent + 6);
    expect(await rows()).toEqual([['/a', 4, 400]]);
    await waitForDelivery(server);
    const late = await server.strata.batch.run();
    expect(late.state).toBe('succeeded');
    expect(late.recomputed.pages).toEqual(['2026-11-26', '2026-11-27']);
    expect(await rows('?layer=batch')).toEqual([['/a', 4, 400]]);
    expect(await rows()).toEqual([['/a', 4, 400]]);
  });

  it('replays quarantined records through fixed rules with strata quarantine replay', async () => {
    dir = await tempDir();
    server = await startInProcess(config({}), dir);
    await ingest(server, events);
    await waitForDelivery(server);
    expect((await server.strata.batch.run()).state).toBe('succeeded');
    expect((await server.strata.streamStatus())[0]!.quarantined).toBe(1);
    // The fix: a missing user_id gets a default, so the record quarantined for it passes the rules.
    await server.close();
    server = await startInProcess(config({}, { defaults: { user_id: 'anonymous' } }), dir);
    const { stdout } = await promisify(execFile)(process.execPath, ['bin/strata.js', 'quarantine', 'replay', 'clicks', '--url', server.url]);
    expect(stdout).toMatch(/batch run \S+ succeeded/);
    expect(stdout).toContain('clicks: 0 records stay quarantined under the current rules (SQL: clicks__quarantine)');
    expect(await rows('?layer=batch')).toEqual([
      ['/cart', 2, 500],
      ['/index', 2, 150],
    ]);
    const unknown = await fetch(`${server.url}/v1/streams/orders/quarantine/replay`, { method: 'POST' });
    expect(unknown.status).toBe(404);
  });
});
