import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { clicksConfig, postRecords, removeDir, startInProcess, tempDir, waitForDelivery, type RunningStrata } from '../fixtures/strata.js';

const run = promisify(execFile);

const clicks = (n: number) =>
  JSON.stringify(
    Array.from({ length: n }, (_, i) => ({ event_id: `e${i}`, ts: '2026-11-25T10:00:00Z', user_id: `u${i}`, page: '/', amount: 1 })),
  );

describe('strata status', () => {
  let dir: string;
  let server: RunningStrata;
  afterEach(async () => {
    await server.close();
    await removeDir(dir);
  });

  it('shows last and delivered seq per shard, and the lake, once delivery caught up', async () => {
    dir = await tempDir();
    server = await startInProcess(clicksConfig({ delivery: { maxSeconds: 0.1 } }, 2), dir);
    await postRecords(server.url, 'clicks', clicks(50));
    await waitForDelivery(server);
    const { stdout } = await run(process.execPath, ['bin/strata.js', 'status', '--url', server.url]);
    expect(stdout).toMatch(/^stream clicks: 2 shards/);
    const shardLines = stdout.split('\n').filter((line) => /^ {2}[01] /.test(line));
    expect(shardLines).toHaveLength(2);
    let total = 0;
    for (const line of shardLines) {
      const [, last, delivered, lag] = line.trim().split(/\s+/);
      expect(delivered).toBe(last);
      expect(lag).toBe('0');
      total += Number(last);
    }
    expect(total).toBe(50);
    expect(stdout).toMatch(/lake: \d+ chunk files, 50 rows, [\d.]+ KB/);
  });

  it('reports the delivery lag in records and seconds while records wait', async () => {
    dir = await tempDir();
    server = await startInProcess(clicksConfig({ delivery: { maxSeconds: 3600 } }, 1), dir);
    await postRecords(server.url, 'clicks', clicks(30));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const { stdout } = await run(process.execPath, ['bin/strata.js', 'status', '--url', server.url, '--json']);
    const shard = (JSON.parse(stdout) as { streams: { shards: { deliveryLagRecords: number; deliveryLagSeconds: number }[] }[] })
      .streams[0]!.shards[0]!;
    expect(shard.deliveryLagRecords).toBe(30);
    expect(shard.deliveryLagSeconds).toBeGreaterThan(0.2);
  });

  it('says when no server answers', async () => {
    dir = await tempDir();
    server = await startInProcess(clicksConfig(), dir);
    const failed = await run(process.execPath, ['bin/strata.js', 'status', '--url', 'http://127.0.0.1:1']).catch((error: { stderr: string; code: number }) => error);
    expect(failed).toMatchObject({ code: 1, stderr: expect.stringContaining('no Strata server answers at http://127.0.0.1:1') });
  });
});

describe('strata status text', () => {
  it("prints each view's memory per group key once the server measured it", async () => {
    const { renderStatus } = await import('../../src/cli/status-command.js');
    const view = { view: 'pages', stream: 'clicks', batchVersion: 2, watermark: { 0: '10' }, speedSeq: { 0: '15' }, ranges: 3 };
    const memory = { speedGroupKeys: 1200, speedBytes: 240_000, speedBytesPerGroupKey: 200, batchGroupKeys: 50_000, batchBytes: 4_000_000 };
    const text = renderStatus({ streams: [], views: [{ ...view, memory }, { ...view, view: 'unmeasured', memory: null }] });
    expect(text).toContain('view pages (clicks): batch v2 covers 10 records; speed layer 5 records past W in 3 micro-batches');
    expect(text).toContain('memory: speed 1,200 group keys, 240.0 KB (200 B per key); batch version in memory 50,000 group keys, 4.0 MB');
    expect(text.match(/memory:/g)).toHaveLength(1);
    const stream = { name: 'clicks', shards: [], recordsPerSecond: 0, accepted: 10, failed: 0, lake: { chunks: 1, rows: 10, bytes: 100 } };
    expect(renderStatus({ streams: [{ ...stream, quarantined: 3 }] })).toContain('  quarantined: 3 records (SQL: clicks__quarantine)');
    expect(renderStatus({ streams: [stream] })).not.toContain('quarantined');
  });
});
