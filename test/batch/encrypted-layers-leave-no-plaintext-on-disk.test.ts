import { watch } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BatchLayer, batchTables, cleanTables } from '../../src/batch/index.js';
import { parseConfig } from '../../src/config/index.js';
import { ChunkWriter, Delivery } from '../../src/lake/index.js';
import { MemoryKeyring, type Keyring } from '../../src/security/keyring.js';
import { SpeedLayer } from '../../src/speed/index.js';
import { SqlEngine } from '../../src/sql/index.js';
import { EmbeddedStream } from '../../src/stream/index.js';
import { compileTransform, recordSource } from '../../src/transform/index.js';
import { compileViews } from '../../src/views/index.js';
import { openLake } from '../fixtures/lake.js';
import { clicksConfig, removeDir, seededRandom, tempDir } from '../fixtures/strata.js';

/** In every page, so in the raw chunks, the clean records, the view's partials and the speed layer's exports. */
const MARKER = 'zq7marker';
const VIEW = `SELECT page, time_bucket(INTERVAL '1 minute', ts) AS minute, count(*) AS views, sum(amount) AS revenue,
  approx_count_distinct(user_id) AS users, approx_quantile(amount, 0.95) AS p95_amount
  FROM clicks GROUP BY page, minute`;
const DAYS = ['2026-11-23', '2026-11-24', '2026-11-25'];

interface Click {
  readonly event_id: string;
  readonly ts: string;
  readonly user_id: string;
  readonly page: string;
  readonly amount: number | null;
}

/**
 * `count` click events; every tenth is an exact copy of the one before it, or, given `earlier`, of an earlier
 * batch's event: the stream's dedupe drops those copies, in batch and in speed alike.
 */
function clicks(seed: number, count: number, prefix: string, earlier: readonly Click[] = []): Click[] {
  const random = seededRandom(seed);
  const out: Click[] = [];
  for (let i = 0; i < count; i++) {
    if (i % 10 === 9) {
      out.push(earlier.length > 0 ? earlier[i - 1]! : out[i - 1]!);
      continue;
    }
    out.push({
      event_id: `${prefix}${i}`,
      ts: `${DAYS[Math.floor(random() * DAYS.length)]}T10:${String(Math.floor(random() * 5)).padStart(2, '0')}:00.000Z`,
      user_id: `u${Math.floor(random() * 50)}`,
      page: ` /${MARKER}/p${Math.floor(random() * 4)} `,
      amount: random() < 0.2 ? null : Math.round(random() * 10_000) / 100,
    });
  }
  return out;
}

async function waitFor(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (const started = Date.now(); !(await check()); ) {
    if (Date.now() - started > 20_000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

interface Outcome {
  /** Answers of the SQL engine, by query, before and after the second batch run. */
  readonly answers: Record<string, unknown>;
  /** Files under the data directory (the log lives elsewhere) holding the marker, and how many were scanned. */
  readonly holding: string[];
  readonly scanned: number;
  readonly exports: number;
  /** Names of every file created under the data directory while the layers ran (staged files come and go). */
  readonly created: string[];
}

/**
 * Delivery, a batch run, the speed layer over newer records, and SQL over all of them, as Strata wires them, with
 * or without a keyring; then a second delivery and an incremental batch run that the speed layer hands over to.
 * The log is outside `data/` (its encryption is the stream's own).
 */
async function pipeline(dir: string, keyring: Keyring | null): Promise<Outcome> {
  const base = clicksConfig({ views: { page_minute: VIEW }, delivery: { maxSeconds: 0.05 }, speed: { intervalMs: 20 }, batch: { threads: 1 } }, 2);
  const transform = { dedupe: { key: 'event_id', within: '1h' }, standardize: { page: 'trim' } };
  const config = parseConfig({ ...base, streams: { clicks: { ...base.streams!.clicks!, transform } } });
  const input = config.streams.get('clicks')!;
  const sources = new Map([['clicks', recordSource(input, await compileTransform(input))]]);
  const views = await compileViews(config);
  const data = join(dir, 'data');
  await mkdir(data, { recursive: true });
  const created = new Set<string>();
  const watcher = watch(data, { recursive: true }, (_event, name) => name !== null && created.add(name));
  const closing: { close(): Promise<void> | void }[] = [{ close: () => watcher.close() }];
  try {
    const stream = await EmbeddedStream.open({ dir: join(dir, 'log'), streams: { clicks: { shards: 2 } } });
    closing.push(stream);
    const { catalog, store, lakeDir } = await openLake(data);
    closing.push(catalog);
    await catalog.ensureTable('clicks', 'raw', input.fields);
    const append = async (events: readonly Click[]) => {
      const lines = events.map((event) => JSON.stringify(event));
      for (let shard = 0; shard < 2; shard++) await stream.append('clicks', shard, lines.filter((_, i) => i % 2 === shard));
    };
    const writer = await ChunkWriter.open(store, { keyring });
    closing.push(writer);
    const deliver = async () => {
      const delivery = new Delivery({ stream, catalog, store, writer, config });
      await delivery.start();
      await waitFor(() => stream.shards('clicks').every((s) => delivery.deliveredSeq('clicks', s.shard) === s.lastSeq), 'delivery');
      await delivery.stop();
    };
    const first = clicks(1, 600, 'a');
    await append(first);
    await deliver();

    const batch = await BatchLayer.open({ catalog, store, config, views, sources, spillDir: join(data, 'batch-spill'), keyring });
    closing.push(batch);
    expect((await batch.run({ fromScratch: true })).state).toBe('succeeded');

    // Past W: only the speed layer shows these, until the second run.
    await append(clicks(2, 300, 'b', first));
    const speed = await SpeedLayer.open({ catalog, stream, store, config, views, sources, stagingDir: join(data, 'speed-staging'), keyring });
    closing.push(speed);
    const caughtUp = () => stream.shards('clicks').every((s) => speed.speedSeq('page_minute')[String(s.shard)] === s.lastSeq);
    await waitFor(caughtUp, 'the speed layer');
    const batchDerived = batchTables(catalog, store, sources, views, keyring);
    const cleanDerived = cleanTables(catalog, store, sources, (name) => batch.transformVersion(name), keyring);
    const sql = await SqlEngine.open({
      catalog,
      store,
      lakeDir,
      spillDir: join(data, 'sql-spill'),
      keyring,
      derivedTables: async () => [...(await cleanDerived()), ...(await batchDerived()), ...speed.derivedTables()],
    });
    closing.push(sql);
    const ask = async (query: string) => (await sql.queryAll(query)).rows;
    // Float sums rounded: chunk boundaries (so summation order) depend on delivery's timing.
    const measures = `page, minute, views, round(revenue, 6) AS revenue, users, round(p95_amount, 6) AS p95_amount`;
    const merged = `SELECT ${measures} FROM page_minute ORDER BY page, minute`;
    const answers: Record<string, unknown> = {
      raw: await ask(`SELECT count(*)::INTEGER AS n, count(DISTINCT event_id)::INTEGER AS ids, round(sum(amount), 6) AS amount FROM clicks`),
      clean: await ask(`SELECT count(*)::INTEGER AS n FROM clicks__clean`),
      quarantine: await ask(`SELECT count(*)::INTEGER AS n FROM clicks__quarantine`),
      batch: await ask(`SELECT ${measures} FROM page_minute__batch ORDER BY page, minute`),
      speed: await ask(`SELECT sum(views)::INTEGER AS views FROM page_minute__speed`),
      merged: await ask(merged),
      mergedViews: await ask(`SELECT sum(views)::INTEGER AS views FROM page_minute`),
    };
    await waitFor(async () => (await readdir(join(lakeDir, '_staging'))).length > 0, 'speed exports');
    const exports = (await readdir(join(lakeDir, '_staging'))).length;

    // A second delivery and an incremental run: the speed layer adopts the new version (its files read with keys).
    await deliver();
    expect((await batch.run()).state).toBe('succeeded');
    await waitFor(() => speed.status().every((view) => view.batchVersion === 2), 'the speed layer to adopt version 2');
    answers.mergedAfter = await ask(merged);
    answers.speedAfter = await ask(`SELECT coalesce(sum(views), 0)::INTEGER AS views FROM page_minute__speed`);
    answers.cleanAfter = await ask(`SELECT count(*)::INTEGER AS n FROM clicks__clean`);

    // Scanned while everything is open: exports and any staged file are still there.
    const holding: string[] = [];
    let scanned = 0;
    for (const entry of await readdir(data, { recursive: true, withFileTypes: true })) {
      if (!entry.isFile()) continue;
      scanned++;
      const bytes = await readFile(join(entry.parentPath, entry.name));
      if (bytes.includes(MARKER)) holding.push(join(entry.parentPath, entry.name).slice(data.length + 1));
    }
    return { answers, holding, scanned, exports, created: [...created] };
  } finally {
    for (const part of closing.reverse()) await part.close();
  }
}

describe('encryption at rest across delivery, batch, speed and SQL', () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const dir of dirs.splice(0)) await removeDir(dir);
  });

  it('leaves no record value readable in any file of the data directory, and answers exactly as without encryption', async () => {
    dirs.push(await tempDir(), await tempDir());
    const encrypted = await pipeline(dirs[0]!, new MemoryKeyring());
    const plain = await pipeline(dirs[1]!, null);

    expect(encrypted.holding).toEqual([]);
    expect(encrypted.scanned).toBeGreaterThan(10);
    expect(encrypted.exports).toBeGreaterThan(0);
    // Records went through memory on their way into DuckDB: no NDJSON was ever staged, by delivery or speed.
    expect(encrypted.created.filter((name) => name.includes('ndjson') || name.startsWith('speed-staging/'))).toEqual([]);
    expect(plain.created.some((name) => name.includes('ndjson'))).toBe(true);
    expect(plain.created.some((name) => name.startsWith('speed-staging/'))).toBe(true);
    // The same scan finds the marker in the plain run's chunks, partials and exports.
    expect(plain.holding.some((path) => path.startsWith('lake/raw/'))).toBe(true);
    expect(plain.holding.some((path) => path.startsWith('lake/views/'))).toBe(true);
    expect(plain.holding.some((path) => path.startsWith('lake/_staging/'))).toBe(true);

    // Lambda: after the second run the batch covers everything and the merged view is unchanged.
    // 600 delivered (60 copies), then 300 past W in the speed layer only (30 copies of delivered events).
    expect(encrypted.answers.raw).toEqual([{ n: 600, ids: 540, amount: expect.any(Number) }]);
    expect(encrypted.answers.clean).toEqual([{ n: 540 }]);
    expect(encrypted.answers.speed).toEqual([{ views: 270 }]);
    expect(encrypted.answers.mergedViews).toEqual([{ views: 810 }]);
    expect(encrypted.answers.cleanAfter).toEqual([{ n: 810 }]);
    expect(encrypted.answers.speedAfter).toEqual([{ views: 0 }]);
    expect(encrypted.answers.mergedAfter).toEqual(encrypted.answers.merged);
    expect(encrypted.answers).toEqual(plain.answers);
  });
});
