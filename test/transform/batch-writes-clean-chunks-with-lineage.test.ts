import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/index.js';
import { importFiles } from '../../src/ingest/index.js';
import { sqlString } from '../../src/util/duckdb.js';
import { writeCsv } from '../import/support.js';
import { ingest } from '../batch/support.js';
import { clicksConfig, removeDir, startInProcess, tempDir, waitForDelivery, type RunningStrata } from '../fixtures/strata.js';

function config(pageMap: Record<string, string>, dedupe = true): ConfigInput {
  const base = clicksConfig({ delivery: { maxSeconds: 0.05 }, views: { pages: 'SELECT page, count(*) AS views FROM clicks GROUP BY page' } }, 2);
  const clicks = base.streams.clicks!;
  return {
    ...base,
    streams: {
      clicks: {
        ...clicks,
        schema: { ...clicks.schema, user_id: 'string?' },
        transform: {
          ...(dedupe ? { dedupe: { key: 'event_id', within: '1h' } } : {}),
          required: ['user_id'],
          standardize: { page: ['trim', 'lower'] },
          map: { page: pageMap },
        },
      },
    },
  };
}

const event = (id: string, user: string | null, page: string, day = '2026-11-25') => ({ event_id: id, ts: `${day}T10:00:00Z`, user_id: user, page, amount: 1 });

interface CatalogAnswer {
  chunkList: { id: number; partition: string }[];
  transform: {
    current: number;
    versions: { version: number; rules: { map: Record<string, Record<string, string>> } }[];
    cleanChunks: { partition: string; cleanKey: string; cleanRows: number; quarantineKey: string | null; quarantineRows: number; rawChunks: number[] }[];
  };
}

describe('the batch layer writes clean chunks', () => {
  let dir: string;
  let server: RunningStrata | null = null;
  afterEach(async () => {
    await server?.close();
    server = null;
    await removeDir(dir);
  });

  const catalog = async () => (await (await fetch(`${server!.url}/v1/catalog/tables/clicks`)).json()) as CatalogAnswer;
  const query = async (sql: string) => (await server!.strata.sql.queryAll(sql)).rows;

  it('under clean/ and quarantine/, per partition, with lineage from raw chunks and a transform version per rules change', async () => {
    dir = await tempDir();
    server = await startInProcess(config({ '/index': '/home' }), dir);
    await ingest(server, [event('a', 'u1', ' /INDEX '), event('b', 'u2', '/Cart', '2026-11-24'), event('c', null, '/cart'), event('a', 'u3', '/index')]);
    await waitForDelivery(server);
    expect((await server.strata.batch.run()).state).toBe('succeeded');

    let answer = await catalog();
    expect(answer.transform.current).toBe(1);
    expect(answer.transform.versions.map((v) => v.version)).toEqual([1]);
    expect(answer.transform.versions[0]!.rules.map).toEqual({ page: { '/index': '/home' } });
    // Every raw chunk went into exactly one clean chunk of its own partition.
    const cleaned = answer.transform.cleanChunks.flatMap((clean) => clean.rawChunks);
    expect(cleaned.sort()).toEqual(answer.chunkList.map((chunk) => chunk.id).sort());
    for (const clean of answer.transform.cleanChunks) {
      for (const raw of clean.rawChunks) expect(answer.chunkList.find((chunk) => chunk.id === raw)!.partition).toBe(clean.partition);
      expect(clean.cleanKey).toMatch(new RegExp(`^clean/clicks/t1/dt=${clean.partition}/`));
      expect(existsSync(join(dir, 'lake', clean.cleanKey))).toBe(true);
    }
    // Clean chunks hold every clean record, duplicates included (de-duplication happens when views read them).
    expect(answer.transform.cleanChunks.reduce((sum, clean) => sum + clean.cleanRows, 0)).toBe(3);
    const quarantined = answer.transform.cleanChunks.filter((clean) => clean.quarantineKey !== null);
    expect(quarantined.map((clean) => [clean.partition, clean.quarantineRows])).toEqual([['2026-11-25', 1]]);

    // The files are plain Parquet any engine reads: the quarantined record with its raw values and reason.
    const duck = await (await DuckDBInstance.create(':memory:')).connect();
    const file = await duck.runAndReadAll(`SELECT event_id, page, __quarantine_reason FROM read_parquet(${sqlString(join(dir, 'lake', quarantined[0]!.quarantineKey!))})`);
    expect(file.getRowObjectsJson()).toEqual([{ event_id: 'c', page: '/cart', __quarantine_reason: 'required: user_id is missing' }]);
    duck.closeSync();

    // SQL reads the clean chunks plus the rules over records no clean chunk holds yet.
    await ingest(server, [event('d', 'u4', '/INDEX'), event('e', null, '/x')]);
    await waitForDelivery(server);
    expect(await query('SELECT event_id, page FROM clicks__clean ORDER BY event_id')).toEqual([
      { event_id: 'a', page: '/home' },
      { event_id: 'b', page: '/cart' },
      { event_id: 'd', page: '/home' },
    ]);
    expect(await query('SELECT event_id FROM clicks__quarantine ORDER BY event_id')).toEqual([{ event_id: 'c' }, { event_id: 'e' }]);

    // The raw chunks delivered since are cleaned (as they land, or by the run), each once.
    const before = answer.transform.cleanChunks.length;
    expect((await server.strata.batch.run()).state).toBe('succeeded');
    answer = await catalog();
    const added = answer.transform.cleanChunks.slice(before);
    expect(added.length).toBeGreaterThan(0);
    expect(added.flatMap((clean) => clean.rawChunks).every((id) => !cleaned.includes(id))).toBe(true);
    expect(answer.transform.cleanChunks.flatMap((clean) => clean.rawChunks).sort()).toEqual(answer.chunkList.map((chunk) => chunk.id).sort());
    expect(await query('SELECT count(*) AS n FROM clicks__quarantine')).toEqual([{ n: '2' }]);

    // New rules: a new transform version; a from-scratch run re-cleans history under it and drops the old files.
    const oldKeys = answer.transform.cleanChunks.map((clean) => clean.cleanKey);
    await server.close();
    server = await startInProcess(config({ '/index': '/start' }), dir);
    expect((await server.strata.batch.run({ fromScratch: true })).state).toBe('succeeded');
    answer = await catalog();
    expect(answer.transform.current).toBe(2);
    expect(answer.transform.versions.map((v) => v.version)).toEqual([1, 2]);
    expect(answer.transform.cleanChunks.every((clean) => clean.cleanKey.startsWith('clean/clicks/t2/'))).toBe(true);
    for (const key of oldKeys) expect(existsSync(join(dir, 'lake', key))).toBe(false);
    expect(await query('SELECT page, count(*) AS n FROM clicks__clean GROUP BY page ORDER BY page')).toEqual([
      { page: '/cart', n: '1' },
      { page: '/start', n: '2' },
    ]);
    const view = (await (await fetch(`${server.url}/v1/views/pages?layer=batch`)).json()) as { rows: { page: string; views: string }[] };
    expect(view.rows.map((row) => [row.page, Number(row.views)])).toEqual([
      ['/cart', 1],
      ['/start', 2],
    ]);

    // The same rules again are the same version: no new one.
    await server.close();
    server = await startInProcess(config({ '/index': '/start' }), dir);
    expect((await catalog()).transform.versions.map((v) => v.version)).toEqual([1, 2]);
  });

  it('holds imported history once: <stream>__clean reads its clean chunk, not the raw rows again', async () => {
    dir = await tempDir();
    // Without de-duplication, which would hide a record read twice.
    server = await startInProcess(config({}, false), join(dir, 'data'));
    const history = await writeCsv(join(dir, 'history.csv'), [event('h1', 'u1', '/A'), event('h2', 'u2', '/B'), event('h3', 'u3', '/C', '2026-11-20')]);
    expect((await importFiles(server.strata, { table: 'clicks', files: [history] })).files[0]).toMatchObject({ state: 'succeeded', rows: 3 });
    expect(await query('SELECT count(*) AS n FROM clicks__clean')).toEqual([{ n: '3' }]);
    expect((await server.strata.batch.run()).state).toBe('succeeded');
    expect((await catalog()).transform.cleanChunks.reduce((sum, clean) => sum + clean.cleanRows, 0)).toBe(3);
    expect(await query('SELECT count(*) AS n FROM clicks__clean')).toEqual([{ n: '3' }]);
    // Delivered records after it: from their clean chunk, or from the rules over the raw table until it is made.
    await ingest(server, [event('d1', 'u4', '/D')]);
    await waitForDelivery(server);
    expect(await query('SELECT event_id FROM clicks__clean ORDER BY event_id')).toEqual([{ event_id: 'd1' }, { event_id: 'h1' }, { event_id: 'h2' }, { event_id: 'h3' }]);
  });

  it('are made as delivery registers chunks, each from one raw chunk, before any run; runs then read them', async () => {
    dir = await tempDir();
    // Every chunk, however small (by default chunks under 10,000 records are left to runs).
    server = await startInProcess({ ...config({}), batch: { cleanOnDeliveryMinRecords: 0 } }, dir);
    await ingest(server, [event('a', 'u1', ' /Home '), event('b', 'u2', '/cart', '2026-11-24'), event('c', null, '/cart')]);
    await waitForDelivery(server);
    await ingest(server, [event('d', 'u3', '/HOME'), event('a', 'u1', '/home')]);
    await waitForDelivery(server);

    // Cleaning follows delivery by a moment: wait until every raw chunk has its clean chunk.
    let answer = await catalog();
    for (const started = Date.now(); Date.now() - started < 10_000; answer = await catalog()) {
      const cleaned = new Set(answer.transform.cleanChunks.flatMap((clean) => clean.rawChunks));
      if (answer.chunkList.every((chunk) => cleaned.has(chunk.id))) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(server.strata.batch.listRuns()).toEqual([]);
    expect(answer.chunkList.length).toBeGreaterThan(1);
    for (const clean of answer.transform.cleanChunks) {
      expect(clean.rawChunks).toHaveLength(1);
      expect(existsSync(join(dir, 'lake', clean.cleanKey))).toBe(true);
    }
    expect(answer.transform.cleanChunks.map((clean) => clean.rawChunks[0]).sort()).toEqual(answer.chunkList.map((chunk) => chunk.id).sort());
    // Clean chunks hold every clean record (the repeated `a` too); the one without a user is quarantined.
    expect(answer.transform.cleanChunks.reduce((sum, clean) => sum + clean.cleanRows, 0)).toBe(4);
    expect(answer.transform.cleanChunks.reduce((sum, clean) => sum + clean.quarantineRows, 0)).toBe(1);
    expect(await query('SELECT page, count(*) AS n FROM clicks__clean GROUP BY page ORDER BY page')).toEqual([
      { page: '/cart', n: '1' },
      { page: '/home', n: '2' },
    ]);

    // A run finds nothing left to clean and reads the clean chunks, de-duplicating as it reads.
    expect((await server.strata.batch.run()).state).toBe('succeeded');
    expect((await catalog()).transform.cleanChunks.map((clean) => clean.cleanKey)).toEqual(answer.transform.cleanChunks.map((clean) => clean.cleanKey));
    const view = (await (await fetch(`${server.url}/v1/views/pages?layer=batch`)).json()) as { rows: { page: string; views: string }[] };
    expect(view.rows.map((row) => [row.page, Number(row.views)])).toEqual([
      ['/cart', 1],
      ['/home', 2],
    ]);
  });
});
