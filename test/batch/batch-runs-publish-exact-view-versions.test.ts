import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DDSKETCH_ALPHA } from '../../src/views/index.js';
import { clicksConfig, removeDir, startInProcess, tempDir, waitForDelivery, type RunningStrata } from '../fixtures/strata.js';
import { batchRows, clickEvents, compareRow, ingest, PAGE_MINUTE, plainRows } from './support.js';

/** Differences between two answers: exact, except doubles, which may differ in their summation order. */
function sameRows(a: Map<string, Record<string, unknown>>, b: Map<string, Record<string, unknown>>): string[] {
  const problems: string[] = a.size === b.size ? [] : [`${a.size} rows vs ${b.size}`];
  for (const [key, row] of a) {
    for (const [column, value] of Object.entries(row)) {
      const other = b.get(key)?.[column];
      const close = typeof value === 'number' && typeof other === 'number' && Math.abs(value - other) <= 1e-9 * Math.max(1, Math.abs(other));
      if (!close && value !== other) problems.push(`${key}.${column}: ${String(value)} vs ${String(other)}`);
    }
  }
  return problems;
}

const SEED = Number(process.env.STRATA_TEST_SEED ?? Math.floor(Math.random() * 2 ** 31));
const DAYS = ['2026-11-20', '2026-11-21', '2026-11-22'];

describe(`batch runs publish view versions (seed ${SEED})`, () => {
  let dir: string;
  let server: RunningStrata;

  beforeAll(async () => {
    dir = await tempDir();
    server = await startInProcess(clicksConfig({ delivery: { maxSeconds: 0.1 }, views: { page_minute: PAGE_MINUTE } }), dir);
  });
  afterAll(async () => {
    await server?.close();
    await removeDir(dir);
  });

  async function expectBatchEqualsPlainDuckDB(): Promise<void> {
    const [actual, expected] = await Promise.all([batchRows(server), plainRows(join(dir, 'lake'))]);
    const problems = [...expected].flatMap(([key, row]) => compareRow(key, actual.get(key), row, DDSKETCH_ALPHA));
    expect(problems).toEqual([]);
    expect(actual.size).toBe(expected.size);
  }

  const files = async () => (await server.strata.catalog.viewVersions('page_minute')).find((v) => v.current)!.files;

  it('answers an empty page_minute__batch before any run', async () => {
    const answer = await server.strata.sql.queryAll('SELECT * FROM page_minute__batch');
    expect(answer.rows).toEqual([]);
    expect(answer.columns.map((c) => c.name)).toEqual(['page', 'minute', 'views', 'paid', 'revenue', 'low', 'high', 'mean', 'users', 'p95_amount']);
  });

  it('computes the view over exactly the delivered chunks, with W at the delivered seqs', async () => {
    await ingest(server, clickEvents(SEED, 3000, DAYS));
    await waitForDelivery(server);
    const run = await server.strata.batch.run();
    expect(run.error).toBeNull();
    expect(run.state).toBe('succeeded');
    expect(run.progress).toBe(1);
    expect(run.version).toEqual({ page_minute: 1 });
    const delivered = Object.fromEntries([0, 1, 2, 3].map((shard) => [String(shard), server.strata.delivery.deliveredSeq('clicks', shard)]));
    expect(run.watermark).toEqual({ clicks: delivered });
    expect(Object.values(delivered).reduce((a, b) => a + b, 0)).toBe(3000);
    // One file per relation (scalar, HLL, DDSketch) and partition.
    expect((await files()).map((f) => `${f.relation} ${f.partition}`).sort()).toEqual(
      DAYS.flatMap((day) => ['scalar', 'sketch0', 'sketch1'].map((r) => `${r} ${day}`)).sort(),
    );
    await expectBatchEqualsPlainDuckDB();
  });

  it('computes a delta for the one partition that received chunks only, and equals a from-scratch run', async () => {
    await ingest(server, clickEvents(SEED + 1, 800, ['2026-11-21'], 'late'));
    await waitForDelivery(server);
    const incremental = await server.strata.batch.run();
    expect(incremental.state).toBe('succeeded');
    expect(incremental.recomputed).toEqual({ page_minute: ['2026-11-21'] });
    // Every partition keeps its version-1 files; the one with new chunks gets a delta over them in version 2.
    const after = await files();
    expect(after.filter((file) => file.key.includes('/v=2/')).map((file) => `${file.relation} ${file.partition} ${file.key.split('/').at(-1)}`).sort()).toEqual([
      'scalar 2026-11-21 delta.parquet',
      'sketch0 2026-11-21 delta.parquet',
      'sketch1 2026-11-21 delta.parquet',
    ]);
    expect(after.filter((file) => file.key.includes('/v=1/')).length).toBe(9);
    await expectBatchEqualsPlainDuckDB();
    const incrementalRows = await batchRows(server);

    const scratch = await server.strata.batch.run({ fromScratch: true });
    expect(scratch.version).toEqual({ page_minute: 3 });
    expect(scratch.recomputed).toEqual({ page_minute: DAYS });
    expect((await files()).every((file) => file.key.includes('/v=3/'))).toBe(true);
    // Identical rows, approximate measures included (sketches merge exactly); float sums to 1e-9.
    expect(sameRows(await batchRows(server), incrementalRows)).toEqual([]);
    const versions = await server.strata.catalog.viewVersions('page_minute');
    expect(versions.map((v) => [v.version, v.fromScratch, v.current])).toEqual([
      [3, true, true],
      [2, false, false],
      [1, true, false],
    ]);
  });

  it('a failing run leaves the current version and removes what it wrote', async () => {
    await ingest(server, clickEvents(SEED + 2, 300, ['2026-11-23'], 'new'));
    await waitForDelivery(server);
    const before = await batchRows(server);
    server.strata.batch.beforePublish = () => {
      throw new Error('injected failure before the flip');
    };
    try {
      const run = await server.strata.batch.run();
      expect(run.state).toBe('failed');
      expect(run.error).toContain('injected failure');
      expect(run.version).toEqual({});
    } finally {
      server.strata.batch.beforePublish = null;
    }
    expect(await server.strata.catalog.currentViewVersions()).toEqual(new Map([['page_minute', 3]]));
    expect(await batchRows(server)).toEqual(before);
    expect((await server.strata.store.list('views/page_minute/v=4/')).length).toBe(0);
    // The next run succeeds and covers the new partition.
    const run = await server.strata.batch.run();
    expect(run.version).toEqual({ page_minute: 4 });
    expect(run.recomputed).toEqual({ page_minute: ['2026-11-23'] });
    await expectBatchEqualsPlainDuckDB();
  });

  it('keeps batch.keepVersions versions and deletes files only forgotten versions listed', async () => {
    for (let i = 0; i < 4; i++) await server.strata.batch.run({ fromScratch: true });
    const versions = await server.strata.catalog.viewVersions('page_minute');
    expect(versions.map((v) => v.version)).toEqual([8, 7, 6, 5, 4]);
    const listed = new Set(versions.flatMap((v) => v.files.map((f) => f.key)));
    expect(new Set(await server.strata.store.list('views/'))).toEqual(listed);
  });

  it('POST /v1/batch/runs answers 202, 409 with the running run id, and GET shows its progress', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    server.strata.batch.beforePublish = () => held;
    try {
      const first = await fetch(`${server.url}/v1/batch/runs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ views: ['page_minute'] }),
      });
      expect(first.status).toBe(202);
      const { id } = (await first.json()) as { id: string };
      const second = await fetch(`${server.url}/v1/batch/runs`, { method: 'POST' });
      expect(second.status).toBe(409);
      const conflict = (await second.json()) as { id: string; error: { code: string; message: string } };
      expect(conflict.id).toBe(id);
      expect(conflict.error.code).toBe('batch_running');
      const running = (await (await fetch(`${server.url}/v1/batch/runs/${id}`)).json()) as { state: string; progress: number };
      expect(running.state).toBe('running');
      expect(running.progress).toBeGreaterThanOrEqual(0);
      expect(running.progress).toBeLessThan(1);
      release();
      await server.strata.batch.wait(id);
      const done = (await (await fetch(`${server.url}/v1/batch/runs/${id}`)).json()) as Record<string, unknown>;
      expect(done).toMatchObject({ id, state: 'succeeded', progress: 1, version: { page_minute: 9 }, error: null });
      expect(Object.keys((done.watermark as { clicks: object }).clicks)).toEqual(['0', '1', '2', '3']);
      expect(typeof (done.watermark as { clicks: Record<string, unknown> }).clicks['0']).toBe('string');
    } finally {
      release();
      server.strata.batch.beforePublish = null;
    }
    expect((await fetch(`${server.url}/v1/batch/runs/nope`)).status).toBe(404);
    const unknown = await fetch(`${server.url}/v1/batch/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ views: ['nope'] }),
    });
    expect(unknown.status).toBe(404);
  });
});
