import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { independentQuery, removeDir, seededRandom, startInProcess, tempDir, waitForDelivery, type RunningStrata } from '../fixtures/strata.js';
import { ingest } from '../batch/support.js';
import { dedupedClicks } from './support.js';

const VIEW = 'SELECT page, count(*) AS views, sum(amount) AS revenue FROM clicks GROUP BY page';
const DAYS = ['2026-11-20', '2026-11-21', '2026-11-22', '2026-11-23'];

type Event = { event_id: string; ts: string; user_id: string; page: string; amount: number };

/**
 * Incremental runs under de-duplication add the new records as deltas, judged against the records the current
 * version counted, and recompute whole only the partitions where a new record displaces a counted copy. Each run's
 * batch answer must equal plain DuckDB de-duplicating every record in the lake by the rule, written here by hand.
 */
describe('incremental batch runs with de-duplication', () => {
  let dir: string;
  let server: RunningStrata | null = null;
  afterEach(async () => {
    await server?.close();
    server = null;
    await removeDir(dir);
  });

  // With the key index (the new records' copies looked up in memory), and without it (a semi-join over every key).
  it.each([
    ['through the key index', 8_000_000],
    ['without the key index', 0],
  ])('add deltas for new records, recompute whole the partitions of displaced copies, and equal plain DuckDB after every run (%s)', async (_, dedupeIndexKeys) => {
    dir = await tempDir();
    server = await startInProcess(dedupedClicks({ delivery: { maxSeconds: 0.05 }, views: { pages: VIEW }, batch: { dedupeIndexKeys } }, 3, '24h'), dir);
    const random = seededRandom(4242);
    const sent: Event[] = [];
    let next = 0;
    const fresh = (days: readonly string[]): Event => {
      const hour = String(Math.floor(random() * 24)).padStart(2, '0');
      const event = {
        event_id: `e${next++}`,
        ts: `${days[Math.floor(random() * days.length)]}T${hour}:${String(Math.floor(random() * 60)).padStart(2, '0')}:00Z`,
        user_id: `u${Math.floor(random() * 50)}`,
        page: `/p${Math.floor(random() * 4)}`,
        amount: Math.floor(random() * 1000),
      };
      sent.push(event);
      return event;
    };
    // A producer's retry: the same event again, so on the same shard (the partition key is the user id), later.
    const retry = (days = DAYS): Event => {
      const candidates = sent.filter((event) => days.some((day) => event.ts.startsWith(day)));
      return { ...candidates[Math.floor(random() * candidates.length)]! };
    };

    const batchAnswer = async () => {
      const answer = await fetch(`${server!.url}/v1/views/pages?layer=batch`);
      const body = (await answer.json()) as { rows: { page: string; views: string; revenue: string }[] };
      return body.rows.map((row) => [row.page, Number(row.views), Number(row.revenue)]).sort();
    };
    const plainAnswer = async () => {
      const rows = await independentQuery(
        `SELECT page, count(*) AS views, sum(amount) AS revenue FROM (
           SELECT *, lag(ts) OVER (PARTITION BY event_id ORDER BY ts, __shard, __seq) AS previous
             FROM read_parquet('${join(dir, 'lake')}/raw/clicks/*/*.parquet', hive_partitioning = true))
          WHERE previous IS NULL OR epoch_us(ts) - epoch_us(previous) >= 86400000000 GROUP BY page`,
      );
      return rows.map((row) => [row.page, Number(row.views), Number(row.revenue)]).sort();
    };
    const run = async (events: Event[]) => {
      await ingest(server!, events);
      await waitForDelivery(server!);
      const status = await server!.strata.batch.run();
      expect(status.state, status.error ?? '').toBe('succeeded');
      expect(await batchAnswer()).toEqual(await plainAnswer());
      const version = (await server!.strata.catalog.viewVersions('pages')).find((candidate) => candidate.current)!;
      const deltas = [...new Set(version.files.filter((file) => file.key.endsWith('/delta.parquet')).map((file) => file.partition))].sort();
      return { recomputed: status.recomputed.pages ?? [], deltas };
    };

    // The first version, over every day.
    await run(Array.from({ length: 400 }, () => fresh(DAYS)));

    // New records and retries on the second day only: a delta there, and the day after (within the window of the
    // new records, where an old rule recomputed) is reused.
    const second = await run([...Array.from({ length: 60 }, () => fresh([DAYS[1]!])), ...Array.from({ length: 30 }, () => retry([DAYS[1]!]))]);
    expect(second.recomputed).toEqual([DAYS[1]]);
    expect(second.deltas).toContain(DAYS[1]);

    // Copies two hours earlier than counted events of the third day: they displace those copies (now duplicates of
    // the earlier ones), so that partition is recomputed whole; new records elsewhere still go in as deltas.
    const counted = sent.filter((event) => event.ts.startsWith(DAYS[2]!) && Number(event.ts.slice(11, 13)) >= 2).slice(0, 5);
    const earlier = counted.map((event) => ({ ...event, ts: `${DAYS[2]}T${String(Number(event.ts.slice(11, 13)) - 2).padStart(2, '0')}${event.ts.slice(13)}` }));
    const third = await run([...earlier, ...Array.from({ length: 40 }, () => fresh([DAYS[0]!]))]);
    expect(third.recomputed).toEqual([DAYS[0], DAYS[2]]);
    expect(third.deltas).toContain(DAYS[0]);
    expect(third.deltas).not.toContain(DAYS[2]);

    // Random rounds: new records over every day, same-shard retries, and copies on other shards (another user id).
    for (let round = 0; round < 4; round++) {
      const events = Array.from({ length: 80 }, () => {
        const draw = random();
        if (draw < 0.6) return fresh(DAYS);
        if (draw < 0.85) return retry();
        return { ...retry(), user_id: `v${Math.floor(random() * 50)}` };
      });
      await run(events);
    }
  });
});
