import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MalformedInputError } from '../../src/errors.js';
import { importFiles } from '../../src/ingest/index.js';
import { clicksConfig, independentQuery, postRecords, removeDir, startInProcess, tempDir, waitForDelivery, type RunningStrata } from '../fixtures/strata.js';
import { writeCsv, writeNdjson } from './support.js';

const click = (n: number, day: string) => ({
  event_id: `e${n}`,
  ts: `${day}T12:00:${String(n % 60).padStart(2, '0')}.000Z`,
  user_id: `u${n % 3}`,
  page: `/p${n % 2}`,
  amount: n % 2 === 0 ? null : n,
});

describe('importing history into a stream', () => {
  let dir: string;
  let server: RunningStrata;
  afterEach(async () => {
    await server.close();
    await removeDir(dir);
  });

  it('checks rows against the stream schema and writes files that union with delivered chunks', async () => {
    dir = await tempDir('strata-import-stream-');
    server = await startInProcess(clicksConfig({ delivery: { maxSeconds: 0.2 } }), join(dir, 'data'));
    const live = Array.from({ length: 40 }, (_, n) => click(n, '2026-11-25'));
    expect((await postRecords(server.url, 'clicks', JSON.stringify(live))).status).toBe(200);
    await waitForDelivery(server);

    const history = await writeCsv(join(dir, 'history.csv'), Array.from({ length: 30 }, (_, n) => click(100 + n, n < 10 ? '2026-10-01' : '2026-11-25')));
    const result = await importFiles(server.strata, { table: 'clicks', files: [history] });
    expect(result.files[0]).toMatchObject({ state: 'succeeded', rows: 30 });
    expect(result.files[0]!.keys.map((key) => key.replace(/import-[0-9a-f]{16}-1/, 'import-H-1'))).toEqual([
      'raw/clicks/dt=2026-10-01/import-H-1.parquet',
      'raw/clicks/dt=2026-11-25/import-H-1.parquet',
    ]);

    // One glob over the stream's folder reads delivered and imported rows alike; imported rows have no offset.
    const glob = join(dir, 'data', 'lake', 'raw', 'clicks', '*', '*.parquet');
    const rows = await independentQuery(
      `SELECT dt, __shard IS NULL AS imported, count(*)::INTEGER AS n, count(amount)::INTEGER AS amounts
         FROM read_parquet('${glob}', hive_partitioning = true) GROUP BY ALL ORDER BY dt, imported`,
    );
    expect(rows).toEqual([
      { dt: '2026-10-01', imported: true, n: 10, amounts: 5 },
      { dt: '2026-11-25', imported: false, n: 40, amounts: 20 },
      { dt: '2026-11-25', imported: true, n: 20, amounts: 10 },
    ]);
    // Every file, delivered or imported, stores the offsets with the same physical types.
    const types = await independentQuery(
      `SELECT DISTINCT name, type FROM parquet_schema('${glob}') WHERE name IN ('__shard', '__seq') ORDER BY name`,
    );
    expect(types).toEqual([
      { name: '__seq', type: 'INT64' },
      { name: '__shard', type: 'INT32' },
    ]);
    const chunks = await server.strata.catalog.chunks('clicks');
    expect(chunks.filter((chunk) => chunk.source.startsWith('import:')).reduce((sum, chunk) => sum + chunk.rows, 0)).toBe(30);
    // Delivery goes on after the import, and its offsets are untouched.
    expect((await postRecords(server.url, 'clicks', JSON.stringify([click(41, '2026-11-26')]))).status).toBe(200);
    await waitForDelivery(server);
    const [{ n }] = (await independentQuery(`SELECT count(*)::INTEGER AS n FROM read_parquet('${glob}')`)) as [{ n: number }];
    expect(n).toBe(71);
  });

  it('refuses records the stream would refuse, and a schema or event time of its own', async () => {
    dir = await tempDir('strata-import-stream-');
    server = await startInProcess(clicksConfig(), join(dir, 'data'));
    const lines = [click(1, '2026-11-25'), { ...click(2, '2026-11-25'), user_id: null }];
    const file = await writeNdjson(join(dir, 'clicks.ndjson'), lines);
    const result = await importFiles(server.strata, { table: 'clicks', files: [file] });
    expect(result.files[0]!.error!.message).toBe('clicks.ndjson line 2: field "user_id": must not be null');
    const extra = await writeNdjson(join(dir, 'extra.ndjson'), [{ ...click(3, '2026-11-25'), referrer: 'x' }]);
    expect((await importFiles(server.strata, { table: 'clicks', files: [extra] })).files[0]!.error!.message).toBe(
      'extra.ndjson line 1: field "referrer": is not in the schema of stream "clicks"',
    );
    await expect(importFiles(server.strata, { table: 'clicks', files: [file], schema: { a: 'string' } })).rejects.toThrow(MalformedInputError);
    await expect(importFiles(server.strata, { table: 'clicks', files: [file], eventTime: 'other' })).rejects.toThrow(/partitioned by its event time "ts"/);
    expect(await server.strata.catalog.chunks('clicks')).toEqual([]);
  });
});
