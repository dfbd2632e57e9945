import { afterEach, describe, expect, it } from 'vitest';
import type { Stream } from '../../src/stream/index.js';
import { ingest } from '../batch/support.js';
import { clicksConfig, removeDir, startInProcess, tempDir, waitForView, type RunningStrata } from '../fixtures/strata.js';

const VIEW = `SELECT page, count(*) AS views, sum(amount) AS revenue FROM clicks GROUP BY page`;

interface Answer {
  rows: { page: string; views: number; revenue: number }[];
  provenance: { batchVersion: number | null; watermark: Record<string, string>; speedSeq: Record<string, string> };
}

/**
 * An adoption changes the speed layer's tables in one transaction and commits it with the swap of the version.
 * When it fails midway, the transaction rolls back, and what describes the tables (their ranges, the seqs) is
 * rebuilt from the log past the version held: nothing counted twice, nothing missed.
 */
describe('a failed adoption', () => {
  let dir: string;
  let server: RunningStrata;
  afterEach(async () => {
    await server?.close();
    await removeDir(dir);
  });

  it('rolls back, and the view is rebuilt from the log past its version, then adopts the version again', async () => {
    dir = await tempDir();
    // Chunks of 3 records on one shard: W = 9 after 10 records cuts the speed layer's one range 1..10 in two.
    server = await startInProcess(clicksConfig({ delivery: { maxRecords: 3, maxSeconds: 60 }, speed: { intervalMs: 50 }, views: { hits: VIEW } }, 1), dir);
    const waitFor = (what: string, done: (answer: Answer) => boolean) => waitForView<Answer>(server, 'hits', what, done);
    const events = Array.from({ length: 10 }, (_, i) => ({ event_id: `e${i}`, ts: '2026-11-25T10:00:00Z', user_id: `u${i}`, page: i < 4 ? '/a' : '/b', amount: i }));
    await ingest(server, events);
    await waitFor('the speed layer', (answer) => answer.provenance.speedSeq['0'] === '10');
    for (let i = 0; i < 400 && server.strata.delivery.deliveredSeq('clicks', 0) < 9; i++) await new Promise((resolve) => setTimeout(resolve, 25));
    expect(server.strata.delivery.deliveredSeq('clicks', 0)).toBe(9);

    // The recompute of the cut range's part past W (seq 10) fails once.
    const stream = server.strata.stream as Stream;
    const readBatch = stream.readBatch.bind(stream);
    let failures = 0;
    stream.readBatch = async (name, shard, fromSeq, limit) => {
      if (Number(fromSeq) === 10 && failures === 0) {
        failures++;
        throw new Error('injected log read failure');
      }
      return readBatch(name, shard, fromSeq, limit);
    };
    const run = await server.strata.batch.run();
    expect(failures).toBe(1);
    // The failed adoption is the run's own (the run fails) or a step's that came first (logged; the run then
    // adopts nothing and succeeds).
    expect([String(run.error), ...server.logs].join('\n')).toMatch(/injected log read failure/);

    // The version is loaded and adopted again at a next step, over the state rebuilt from the log.
    const answer = await waitFor('the version adopted', (a) => a.provenance.batchVersion === 1 && a.provenance.speedSeq['0'] === '10');
    expect(answer.provenance.watermark).toEqual({ '0': '9' });
    const byPage = Object.fromEntries(answer.rows.map((row) => [row.page, [Number(row.views), Number(row.revenue)]]));
    expect(byPage).toEqual({ '/a': [4, 0 + 1 + 2 + 3], '/b': [6, 4 + 5 + 6 + 7 + 8 + 9] });
    expect(server.strata.speed.status()[0]).toMatchObject({ batchVersion: 1, speedSeq: { '0': 10 } });
  });
});
