import { copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { importFiles } from '../../src/ingest/index.js';
import type { Strata } from '../../src/strata.js';
import { clicksConfig, independentQuery, removeDir, tempDir } from '../fixtures/strata.js';
import { lakeFiles, openStrata, ORDER_SCHEMA, orders, writeCsv } from './support.js';

describe('importing the same content twice', () => {
  let dir: string;
  let strata: Strata;
  beforeEach(async () => {
    dir = await tempDir('strata-import-dup-');
    strata = await openStrata(clicksConfig(), join(dir, 'data'));
  });
  afterEach(async () => {
    await strata.close();
    await removeDir(dir);
  });

  it('is refused by content hash, naming the file and when it was imported, unless duplicates are allowed', async () => {
    const first = await writeCsv(join(dir, 'orders.csv'), orders(6) as unknown as Record<string, unknown>[]);
    const renamed = join(dir, 'orders-copy.csv');
    await copyFile(first, renamed);
    const options = { table: 'orders', schema: ORDER_SCHEMA, eventTime: 'ts' };
    const imported = await importFiles(strata, { ...options, files: [first] });
    const importedAt = (await strata.catalog.findImport('orders', imported.files[0]!.contentHash!))!.importedAt;
    const filesAfterFirst = await lakeFiles(join(dir, 'data'));

    const refused = await importFiles(strata, { ...options, files: [renamed] });

    expect(refused.files[0]!.state).toBe('failed');
    expect(refused.files[0]!.error!.code).toBe('duplicate_import');
    expect(refused.files[0]!.error!.message).toBe(
      `orders-copy.csv: the same content was imported into "orders" at ${importedAt} (from ${first}); ` +
        'importing it again would count its rows twice (--allow-duplicate, or allowDuplicate in the API, imports it anyway)',
    );
    expect(await lakeFiles(join(dir, 'data'))).toEqual(filesAfterFirst);

    const allowed = await importFiles(strata, { ...options, files: [renamed], allowDuplicate: true });

    expect(allowed.files[0]).toMatchObject({ state: 'succeeded', rows: 6 });
    // Both copies are kept, under names that differ only in the import count.
    const stem = `import-${imported.files[0]!.contentHash!.slice(0, 16)}`;
    expect(allowed.files[0]!.keys.every((key) => key.endsWith(`/${stem}-2.parquet`))).toBe(true);
    expect(imported.files[0]!.keys.every((key) => key.endsWith(`/${stem}-1.parquet`))).toBe(true);
    const [{ n }] = (await independentQuery(
      `SELECT count(*)::INTEGER AS n FROM read_parquet('${join(dir, 'data', 'lake', 'imported', 'orders', '*', '*.parquet')}')`,
    )) as [{ n: number }];
    expect(n).toBe(12);
  });

  it('refuses a duplicate within one import too', async () => {
    const first = await writeCsv(join(dir, 'a.csv'), orders(3) as unknown as Record<string, unknown>[]);
    const second = join(dir, 'b.csv');
    await copyFile(first, second);
    const result = await importFiles(strata, { table: 'orders', files: [first, second], schema: ORDER_SCHEMA });
    expect(result.files.map((file) => file.error?.code ?? file.state)).toEqual(['succeeded', 'duplicate_import']);
    expect(result.rows).toBe(3);
  });
});
