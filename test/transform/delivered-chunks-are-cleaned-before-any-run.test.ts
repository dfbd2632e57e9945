import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../src/config/index.js';
import { ingest } from '../batch/support.js';
import { clicksConfig, removeDir, startInProcess, tempDir, waitForDelivery, type RunningStrata } from '../fixtures/strata.js';

function config(): ConfigInput {
  const base = clicksConfig({ delivery: { maxSeconds: 0.05 }, views: { pages: 'SELECT page, count(*) AS views FROM clicks GROUP BY page' } }, 2);
  const clicks = base.streams.clicks!;
  return {
    ...base,
    streams: {
      clicks: {
        ...clicks,
        schema: { ...clicks.schema, user_id: 'string?' },
        transform: { dedupe: { key: 'event_id', within: '1h' }, required: ['user_id'], standardize: { page: ['trim', 'lower'] } },
      },
    },
  };
}

const event = (id: string, user: string | null, page: string, day = '2026-11-25') => ({ event_id: id, ts: `${day}T10:00:00Z`, user_id: user, page, amount: 1 });

interface CatalogAnswer {
  chunkList: { id: number }[];
  transform: { cleanChunks: { cleanKey: string; cleanRows: number; quarantineRows: number; rawChunks: number[] }[] };
}

describe('delivered chunks', () => {
  let dir: string;
  let server: RunningStrata | null = null;
  afterEach(async () => {
    await server?.close();
    server = null;
    await removeDir(dir);
  });

  const catalog = async () => (await (await fetch(`${server!.url}/v1/catalog/tables/clicks`)).json()) as CatalogAnswer;

  /** The catalog once every raw chunk has a clean chunk, or the last answer when that takes too long. */
  async function allCleaned(): Promise<CatalogAnswer> {
    const started = Date.now();
    for (;;) {
      const answer = await catalog();
      const cleaned = new Set(answer.transform.cleanChunks.flatMap((clean) => clean.rawChunks));
      if (answer.chunkList.every((chunk) => cleaned.has(chunk.id)) || Date.now() - started > 10_000) return answer;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  it('are cleaned as they land, each into a clean chunk of its own, and runs read those', async () => {
    dir = await tempDir();
    server = await startInProcess(config(), dir);
    await ingest(server, [event('a', 'u1', ' /Home '), event('b', 'u2', '/cart', '2026-11-24'), event('c', null, '/cart')]);
    await waitForDelivery(server);
    await ingest(server, [event('d', 'u3', '/HOME'), event('a', 'u1', '/home')]);
    await waitForDelivery(server);

    const answer = await allCleaned();
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
    expect((await server.strata.sql.queryAll('SELECT page, count(*) AS n FROM clicks__clean GROUP BY page ORDER BY page')).rows).toEqual([
      { page: '/cart', n: '1' },
      { page: '/home', n: '2' },
    ]);

    // A run finds nothing left to clean and reads the clean chunks, de-duplicating as it reads.
    expect((await server.strata.batch.run()).state).toBe('succeeded');
    const after = await catalog();
    expect(after.transform.cleanChunks.map((clean) => clean.cleanKey)).toEqual(answer.transform.cleanChunks.map((clean) => clean.cleanKey));
    const view = (await (await fetch(`${server.url}/v1/views/pages?layer=batch`)).json()) as { rows: { page: string; views: string }[] };
    expect(view.rows.map((row) => [row.page, Number(row.views)])).toEqual([
      ['/cart', 1],
      ['/home', 2],
    ]);
  });
});
