import { afterEach, describe, expect, it } from 'vitest';
import { shardForKey } from '../../src/stream/partition.js';
import { getView, removeDir, startInProcess, tempDir, waitForView, type RunningStrata } from '../fixtures/strata.js';
import { ingest } from '../batch/support.js';
import { dedupedClicks } from './support.js';

const VIEW = 'SELECT page, count(*) AS views FROM clicks GROUP BY page';

interface Answer {
  rows: { page: string; views: number }[];
  provenance: { batchVersion: number | null; watermark: Record<string, string>; speedSeq: Record<string, string> };
}

/**
 * Two copies of one key on two shards: the later-timed copy reaches the speed layer first and is counted; the
 * earlier-timed one arrives next and is dropped there. The batch layer, which sees both at once, keeps the
 * earlier-timed copy. When a version covers that copy but not the other (its shard not yet delivered past it),
 * the speed layer's copy must give way: its micro-batch is computed again, and the key counts once.
 */
describe('de-duplication across the layers', () => {
  let dir: string;
  let server: RunningStrata | null = null;
  afterEach(async () => {
    await server?.close();
    server = null;
    await removeDir(dir);
  });

  it('drops a counted speed copy when a version covers an earlier copy of its key from another shard', async () => {
    dir = await tempDir();
    // Chunks of 2 records: the first copy's shard holds 1 record and stays undelivered; the other shard seals.
    server = await startInProcess(dedupedClicks({ delivery: { maxRecords: 2, maxSeconds: 60 }, speed: { intervalMs: 50 }, views: { pages: VIEW } }, 2, '1h'), dir);
    const running = server;
    const get = () => getView<Answer>(running, 'pages');
    const waitFor = (what: string, done: (answer: Answer) => boolean) => waitForView<Answer>(running, 'pages', what, done);
    const views = (answer: Answer) => Object.fromEntries(answer.rows.map((row) => [row.page, Number(row.views)]));
    const users = Array.from({ length: 50 }, (_, i) => `user${i}`);
    const late = users.find((user) => shardForKey(user, 2) === 0)!;
    const early = users.find((user) => shardForKey(user, 2) === 1)!;

    // The later-timed copy first, on shard 0: counted by the speed layer.
    await ingest(running, [{ event_id: 'x', ts: '2026-11-25T10:00:30Z', user_id: late, page: '/x', amount: 1 }]);
    await waitFor('the first copy', (answer) => answer.provenance.speedSeq['0'] === '1');
    // The earlier-timed copy next, on shard 1, with another record that fills the shard's chunk.
    await ingest(running, [
      { event_id: 'x', ts: '2026-11-25T10:00:00Z', user_id: early, page: '/x', amount: 1 },
      { event_id: 'y', ts: '2026-11-25T10:00:00Z', user_id: early, page: '/y', amount: 1 },
    ]);
    expect(views(await waitFor('the second copy', (answer) => answer.provenance.speedSeq['1'] === '2'))).toEqual({ '/x': 1, '/y': 1 });
    for (let i = 0; i < 400 && running.strata.delivery.deliveredSeq('clicks', 1) < 2; i++) await new Promise((resolve) => setTimeout(resolve, 25));
    expect([running.strata.delivery.deliveredSeq('clicks', 0), running.strata.delivery.deliveredSeq('clicks', 1)]).toEqual([0, 2]);

    // The version covers the earlier-timed copy (shard 1), which it keeps; the speed layer's copy gives way.
    expect((await running.strata.batch.run()).state).toBe('succeeded');
    const answer = await get();
    expect(answer.provenance.watermark).toEqual({ '0': '0', '1': '2' });
    expect(views(answer)).toEqual({ '/x': 1, '/y': 1 });
    expect(running.strata.speed.status()[0]!.recomputedRanges).toBeGreaterThan(0);
  });
});
