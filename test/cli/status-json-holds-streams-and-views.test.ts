import { afterEach, describe, expect, it, vi } from 'vitest';
import { buildProgram } from '../../src/cli/index.js';
import { clicksConfig, postRecords, removeDir, startInProcess, tempDir, type RunningStrata } from '../fixtures/strata.js';

/** Runs a `strata` command in this process and answers what it printed with console.log. */
async function strata(...args: string[]): Promise<string> {
  const printed: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...values: unknown[]) => void printed.push(values.map(String).join(' ')));
  try {
    await buildProgram().parseAsync(['node', 'strata', ...args]);
  } finally {
    log.mockRestore();
  }
  return printed.join('\n');
}

interface StatusJson {
  streams: {
    name: string;
    shards: { shard: string; lastSeq: string; deliveredSeq: string; deliveryLagRecords: number; deliveryLagSeconds: number }[];
    accepted: number;
    failed: number;
    recordsPerSecond: number;
    lake: { chunks: number; rows: number; bytes: number };
  }[];
  views: { view: string; stream: string; batchVersion: number | null; watermark: Record<string, string>; speedSeq: Record<string, string> }[];
}

describe('strata status --json', () => {
  let dir: string;
  let server: RunningStrata;
  afterEach(async () => {
    await server.close();
    await removeDir(dir);
  });

  it('prints one JSON document holding every stream, its shards and counters, and the views', async () => {
    dir = await tempDir();
    server = await startInProcess(
      clicksConfig({ delivery: { maxSeconds: 3600 }, views: { pages: 'SELECT page, count(*) AS views FROM clicks GROUP BY page' } }, 3),
      dir,
    );
    const records = Array.from({ length: 12 }, (_, i) => ({ event_id: `e${i}`, ts: '2026-11-25T10:00:00Z', user_id: `u${i}`, page: '/' }));
    await postRecords(server.url, 'clicks', JSON.stringify([...records, { page: '/refused' }]));

    const status = JSON.parse(await strata('status', '--json', '--url', server.url)) as StatusJson;
    expect(status.streams.map((stream) => stream.name)).toEqual(['clicks']);
    const [clicks] = status.streams;
    expect(clicks!.shards.map((shard) => shard.shard)).toEqual(['0', '1', '2']);
    // Seqs are decimal strings, as everywhere in the API.
    expect(clicks!.shards.reduce((sum, shard) => sum + Number(shard.lastSeq), 0)).toBe(12);
    expect(clicks!.shards.every((shard) => typeof shard.lastSeq === 'string' && shard.deliveredSeq === '0')).toBe(true);
    expect(clicks!.shards.reduce((sum, shard) => sum + shard.deliveryLagRecords, 0)).toBe(12);
    expect(clicks).toMatchObject({ accepted: 12, failed: 1, lake: { chunks: 0, rows: 0 } });
    expect(status.views).toEqual([expect.objectContaining({ view: 'pages', stream: 'clicks', batchVersion: null })]);
  });

  it('prints the text table without --json', async () => {
    dir = await tempDir();
    server = await startInProcess(clicksConfig({}, 1), dir);
    const text = await strata('status', '--url', server.url);
    expect(text).toMatch(/^stream clicks: 1 shards/);
    expect(() => JSON.parse(text)).toThrow();
  });
});
