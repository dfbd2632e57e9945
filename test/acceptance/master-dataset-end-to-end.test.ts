import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { independentQuery, killHard, removeDir, startProcess, tempDir, type StrataProcess } from '../fixtures/strata.js';

const run = promisify(execFile);

/**
 * The master dataset's acceptance, as a newcomer meets it: `strata start` with the example config, events
 * over HTTP, delivery, then `strata sql` counting exactly the acknowledged events, and DuckDB on its own
 * reading the same rows, with their `dt` partition, straight from the lake's folders.
 */
describe('from ingest to the lake to SQL, with the example config', () => {
  let dir: string;
  let server: StrataProcess;
  beforeAll(async () => {
    dir = await tempDir('strata-acceptance-');
    server = await startProcess('examples/clickstream/strata.config.json', join(dir, 'data'));
  });
  afterAll(async () => {
    await killHard(server.child);
    await removeDir(dir);
  });

  it('counts every acknowledged event, in Strata and in any engine reading the folders', async () => {
    let acked = 0;
    const days = ['2026-11-23', '2026-11-24', '2026-11-25'];
    for (let batch = 0; batch < 6; batch++) {
      const events = Array.from({ length: 250 }, (_, i) => ({
        event_id: `b${batch}-${i}`,
        ts: `${days[(batch + i) % 3]}T1${i % 10}:00:00Z`,
        user_id: `u${i % 40}`,
        page: `/p${i % 7}`,
        amount: i % 4 === 0 ? null : i,
      }));
      events.push({ event_id: 'bad', ts: 'not a time', user_id: 'u', page: '/', amount: null });
      const response = await fetch(`${server.url}/v1/streams/clicks/records`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(events),
      });
      const answer = (await response.json()) as { records: unknown[]; failed: number };
      expect(answer.failed).toBe(1);
      acked += answer.records.length - answer.failed;
    }
    // The example config seals chunks at least every 10 s: wait for delivery to register everything.
    for (let i = 0; ; i++) {
      const state = (await (await fetch(`${server.url}/v1/streams`)).json()) as {
        streams: { shards: { lastSeq: string; deliveredSeq: string }[] }[];
      };
      if (state.streams[0]!.shards.every((shard) => shard.deliveredSeq === shard.lastSeq)) break;
      if (i > 300) throw new Error('delivery did not catch up within 30 s');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const { stdout } = await run(process.execPath, [
      'bin/strata.js', 'sql', 'select count(*) as n from clicks', '--format', 'json', '--url', server.url,
    ]);
    expect((JSON.parse(stdout) as { rows: { n: string }[] }).rows[0]!.n).toBe(String(acked));

    const glob = join(dir, 'data', 'lake', 'raw', 'clicks', '*', '*.parquet');
    const byDay = await independentQuery(
      `SELECT dt, count(*)::INTEGER AS n FROM read_parquet('${glob}', hive_partitioning = true) GROUP BY dt ORDER BY dt`,
    );
    expect(byDay.map((row) => row.dt)).toEqual(days);
    expect(byDay.reduce((sum, row) => sum + (row.n as number), 0)).toBe(acked);
  }, 60_000);
});
