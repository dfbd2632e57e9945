import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterEach, describe, expect, it } from 'vitest';
import type { SqliteCatalog } from '../../src/catalog/index.js';
import { ChunkWriter, type LocalObjectStore } from '../../src/lake/index.js';
import { encryptionSettings, parquetKeyScope } from '../../src/lake/parquet-encryption.js';
import { dataKeyId, MemoryKeyring } from '../../src/security/keyring.js';
import { SqlEngine } from '../../src/sql/index.js';
import { sqlString } from '../../src/util/duckdb.js';
import { CLICK_FIELDS, openLake, writeParquet } from '../fixtures/lake.js';
import { independentQuery, removeDir, tempDir } from '../fixtures/strata.js';

const MARKER = 'zq7marker';

/** Every file under `dir` (recursively) whose bytes hold `needle`. */
async function filesHolding(dir: string, needle: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    if ((await readFile(path)).includes(needle)) found.push(path);
  }
  return found;
}

/** Click rows of one shard whose pages carry the marker, in raw-table layout. */
function markedRows(shard: number, firstSeq: number, n: number, day: string): string {
  return `SELECT 'e' || (${firstSeq} + i) AS event_id, TIMESTAMP '${day} 10:00:00' + to_seconds(i) AS ts, 'u' || (i % 3) AS user_id,
                 '/${MARKER}/' || (i % 2) AS page, (i * 1.5)::DOUBLE AS amount, ${shard}::INTEGER AS __shard, (${firstSeq} + i)::BIGINT AS __seq
            FROM range(${n}) t(i)`;
}

describe('Parquet encryption at rest', () => {
  let dir: string;
  const closing: { close(): Promise<void> | void }[] = [];
  afterEach(async () => {
    for (const part of closing.splice(0).reverse()) await part.close();
    await removeDir(dir);
  });

  async function lake(): Promise<{ catalog: SqliteCatalog; store: LocalObjectStore; lakeDir: string }> {
    const opened = await openLake(dir);
    closing.push(opened.catalog);
    await opened.catalog.ensureTable('clicks', 'raw', CLICK_FIELDS);
    return opened;
  }

  it('writes chunks no byte of which shows a value, one key per table and day, that SQL reads back and a DuckDB without the key cannot', async () => {
    dir = await tempDir();
    const { catalog, store, lakeDir } = await lake();
    const keyring = new MemoryKeyring();
    const writer = await ChunkWriter.open(store, { keyring });
    closing.push(writer);
    expect(writer.encrypts).toBe(true);
    let seq = 1;
    for (const day of ['2026-11-24', '2026-11-25', '2026-11-25']) {
      const files = await writer.write({ prefix: 'raw/clicks', stem: `0-${seq}-${seq + 99}`, eventTime: 'ts', source: markedRows(0, seq, 100, day) });
      await catalog.commitDelivery('clicks', 0, seq, seq + 99, files);
      seq += 100;
    }

    expect(await filesHolding(lakeDir, MARKER)).toEqual([]);
    // The files of one day share that day's key; every file begins with the encrypted-footer magic.
    const chunks = await catalog.chunks('clicks');
    expect(new Set(chunks.map((chunk) => parquetKeyScope(chunk.key)))).toEqual(new Set(['lake/raw/clicks/dt=2026-11-24', 'lake/raw/clicks/dt=2026-11-25']));
    for (const chunk of chunks) expect((await readFile(store.location(chunk.key))).subarray(0, 4).toString()).toBe('PARE');
    await expect(independentQuery(`SELECT count(*) FROM read_parquet(${sqlString(store.location(chunks[0]!.key))})`)).rejects.toThrow(/encrypted/);

    const sql = await SqlEngine.open({ catalog, store, lakeDir, keyring });
    closing.push(sql);
    const answer = await sql.queryAll(`SELECT dt, count(*)::INTEGER AS n, count(DISTINCT page)::INTEGER AS pages, min(page) AS page, sum(amount) AS amount FROM clicks GROUP BY dt ORDER BY dt`);
    expect(answer.rows).toEqual([
      { dt: '2026-11-24', n: 100, pages: 2, page: `/${MARKER}/0`, amount: 7425 },
      { dt: '2026-11-25', n: 200, pages: 2, page: `/${MARKER}/0`, amount: 14850 },
    ]);
    // A filter on dt prunes the other partition's read_parquet, as with plain files.
    expect((await sql.queryAll(`SELECT count(*)::INTEGER AS n FROM clicks WHERE dt = '2026-11-24' AND page LIKE '%/1'`)).rows).toEqual([{ n: 50 }]);
  });

  it('keeps the same values readable in plain Parquet, so the scan above is a real check', async () => {
    dir = await tempDir();
    const { store, lakeDir } = await lake();
    const writer = await ChunkWriter.open(store);
    closing.push(writer);
    expect(writer.encrypts).toBe(false);
    await writer.write({ prefix: 'raw/clicks', stem: '0-1-100', eventTime: 'ts', source: markedRows(0, 1, 100, '2026-11-25') });
    expect(await filesHolding(lakeDir, MARKER)).toHaveLength(1);
  });

  it('reads a partition holding plain chunks from before the master key beside encrypted ones', async () => {
    dir = await tempDir();
    const { catalog, store, lakeDir } = await lake();
    // Written while Strata ran without a master key.
    const plain = await writeParquet(store, 'raw/clicks/dt=2026-11-25/0-1-10.parquet', markedRows(0, 1, 10, '2026-11-25'));
    await catalog.commitDelivery('clicks', 0, 1, 10, [plain]);
    const keyring = new MemoryKeyring();
    const writer = await ChunkWriter.open(store, { keyring });
    closing.push(writer);
    const files = await writer.write({ prefix: 'raw/clicks', stem: '0-11-30', eventTime: 'ts', source: markedRows(0, 11, 20, '2026-11-25') });
    await catalog.commitDelivery('clicks', 0, 11, 30, files);
    const sql = await SqlEngine.open({ catalog, store, lakeDir, keyring });
    closing.push(sql);
    expect((await sql.queryAll(`SELECT count(*)::INTEGER AS n, count(DISTINCT __seq)::INTEGER AS seqs, max(__seq)::INTEGER AS top FROM clicks`)).rows).toEqual([{ n: 30, seqs: 30, top: 30 }]);
  });

  it('fails to read with another keyring, naming the key', async () => {
    dir = await tempDir();
    const { catalog, store, lakeDir } = await lake();
    const writer = await ChunkWriter.open(store, { keyring: new MemoryKeyring() });
    closing.push(writer);
    await catalog.commitDelivery('clicks', 0, 1, 10, await writer.write({ prefix: 'raw/clicks', stem: '0-1-10', eventTime: 'ts', source: markedRows(0, 1, 10, '2026-11-25') }));
    // A keyring that lacks the partition's key reads the file as plain: DuckDB refuses it.
    const sql = await SqlEngine.open({ catalog, store, lakeDir, keyring: new MemoryKeyring() });
    closing.push(sql);
    await expect(sql.queryAll('SELECT count(*) FROM clicks')).rejects.toThrow(/encrypted/);
    // A keyring with another key under the same id fails the tag check.
    const wrong = new MemoryKeyring();
    wrong.keyFor('lake/raw/clicks/dt=2026-11-25');
    expect(dataKeyId('lake/raw/clicks/dt=2026-11-25')).toMatch(/^k_[0-9a-f]{32}$/);
    const other = await SqlEngine.open({ catalog, store, lakeDir, keyring: wrong });
    closing.push(other);
    await expect(other.queryAll('SELECT count(*) FROM clicks')).rejects.toThrow(/AES tag|right key/);
  });

  it('encrypts what DuckDB spills past its memory limit, with the settings every Strata DuckDB takes with a keyring', async () => {
    dir = await tempDir();
    const spilled = async (encrypted: boolean): Promise<string[]> => {
      const spill = join(dir, encrypted ? 'spill-encrypted' : 'spill-plain');
      const instance = await DuckDBInstance.create(':memory:', {
        memory_limit: '64MB',
        threads: '1',
        temp_directory: spill,
        ...encryptionSettings(encrypted ? new MemoryKeyring() : null),
      });
      const connection = await instance.connect();
      try {
        // A temporary table larger than the memory limit lives in the temp file until it is dropped.
        await connection.run(`CREATE TEMP TABLE big AS SELECT '${MARKER}' || i::VARCHAR || repeat('x', 64) AS s FROM range(1500000) t(i)`);
        const files = await readdir(spill);
        expect(files.length).toBeGreaterThan(0);
        return await filesHolding(spill, MARKER);
      } finally {
        connection.closeSync();
        instance.closeSync();
      }
    };
    expect(await spilled(false)).not.toEqual([]);
    expect(await spilled(true)).toEqual([]);
  });
});
