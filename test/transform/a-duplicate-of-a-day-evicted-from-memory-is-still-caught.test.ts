import { afterEach, describe, expect, it } from 'vitest';
import { getView, removeDir, startInProcess, tempDir, waitForDelivery, waitForView, type RunningStrata } from '../fixtures/strata.js';
import { ingest } from '../batch/support.js';
import { dedupedClicks } from './support.js';

const VIEW = 'SELECT page, count(*) AS views FROM clicks GROUP BY page';

interface Answer {
  rows: { page: string; views: number }[];
  provenance: { batchVersion: number | null; speedSeq: Record<string, string> };
}

/**
 * The speed layer keeps the copies a batch version covers in memory only near the newest event time: a day more
 * than a day past the window behind it leaves memory (evicted whole), and is loaded again from the lake when a
 * record of that day arrives. A late duplicate is then caught as if the day had never left; a day still held
 * is not evicted.
 */
describe('de-duplication in the speed layer, across eviction', () => {
  let dir: string;
  let server: RunningStrata | null = null;
  afterEach(async () => {
    await server?.close();
    server = null;
    await removeDir(dir);
  });

  it('catches a late duplicate of an evicted day (loaded again from the lake) and of a day still held', async () => {
    dir = await tempDir();
    server = await startInProcess(dedupedClicks({ delivery: { maxSeconds: 0.05 }, speed: { intervalMs: 50 }, views: { pages: VIEW } }, 1, '1h'), dir);
    const running = server;
    const get = () => getView<Answer>(running, 'pages');
    const views = (answer: Answer) => Object.fromEntries(answer.rows.map((row) => [row.page, Number(row.views)]));
    const waitFor = (what: string, done: (answer: Answer) => boolean) => waitForView<Answer>(running, 'pages', what, done);
    const click = (id: string, ts: string, page: string) => ({ event_id: id, ts, user_id: 'u', page, amount: 1 });
    // Day D (evicted later), day D+2 (held: the horizon is a day past the window behind the newest, D+3 10:00).
    const first = [
      ...[0, 1, 2].map((i) => click(`d${i}`, `2026-11-20T10:0${i}:00Z`, '/d')),
      ...[0, 1, 2].map((i) => click(`h${i}`, `2026-11-22T10:0${i}:00Z`, '/h')),
      click('n0', '2026-11-23T10:00:00Z', '/n'),
    ];
    await ingest(running, first);
    await waitFor('the speed layer', (answer) => answer.provenance.speedSeq['0'] === '7');
    await waitForDelivery(running);
    // The version covers every copy: the speed layer's copies become covered ones, and day D leaves memory.
    expect((await running.strata.batch.run()).state).toBe('succeeded');
    expect(views(await get())).toEqual({ '/d': 3, '/h': 3, '/n': 1 });

    // Retries of d0 and h1 (same key, same event time), and a new record of each day.
    await ingest(running, [click('d0', '2026-11-20T10:00:00Z', '/d'), click('d9', '2026-11-20T11:00:00Z', '/d'), click('h1', '2026-11-22T10:01:00Z', '/h'), click('h9', '2026-11-22T11:00:00Z', '/h')]);
    const answer = await waitFor('the speed layer', (a) => a.provenance.speedSeq['0'] === '11');
    expect(views(answer)).toEqual({ '/d': 4, '/h': 4, '/n': 1 });
    // The batch layer decides the same.
    await waitForDelivery(running);
    expect((await running.strata.batch.run()).state).toBe('succeeded');
    expect(views(await get())).toEqual({ '/d': 4, '/h': 4, '/n': 1 });
  });
});
