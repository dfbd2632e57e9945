import { stat } from 'node:fs/promises';
import type { DuckDBConnection } from '@duckdb/node-api';
import type { Catalog, ChunkInfo, CleanChunkInfo, NewCleanChunk } from '../catalog/index.js';
import type { StreamConfig } from '../config/index.js';
import { parquetCopyOptions, type ObjectStore } from '../lake/index.js';
import { readParquetByKey, type ParquetKeys } from '../lake/parquet-encryption.js';
import type { FileSchemas } from '../sql/file-schemas.js';
import { viewQuery } from '../sql/lake-views.js';
import type { RecordSource } from '../transform/index.js';
import { sqlString } from '../util/duckdb.js';
import { groupBy } from '../util/group-by.js';

/**
 * The batch layer's cleaning step (the Glue ETL job of the AWS design): raw chunks in, `clean/<stream>` and
 * `quarantine/<stream>` chunks out, under the stream's transform version, with the lineage from each raw chunk
 * to the clean chunk it went into.
 *
 * A clean chunk is the cleaning of one raw chunk as delivery registered it (BatchLayer.cleanDelivered), or of the
 * raw chunks of one event-time partition that a run found uncleaned, so a run adds at most one clean file (and
 * one quarantine file) per partition it saw uncleaned chunks in. Clean
 * chunks hold every record that passes the rules, with its offset (`__shard`, `__seq`) and `dt`: de-duplication
 * is not applied to them, since whether a record is a duplicate depends on records delivered later (an earlier
 * copy may arrive late), while a clean chunk, like every file of the lake, never changes. Views and
 * `<stream>__clean` de-duplicate when they read.
 *
 * A rules change makes a new transform version: nothing of the old one is read again, and the next run re-cleans
 * every raw chunk under the new rules (and drops the old version's files).
 */

/** What the cleaning step of one stream works with. */
export interface CleanStageContext {
  readonly catalog: Catalog;
  readonly store: ObjectStore;
  readonly connection: DuckDBConnection;
  readonly schemas: FileSchemas;
  readonly stream: StreamConfig;
  readonly source: RecordSource;
  /** The catalog's number of the stream's current transform version. */
  readonly transformVersion: number;
  /** The data keys of the run's DuckDB: clean and quarantine files are encrypted as every lake file is. */
  readonly keys: ParquetKeys;
}

/** The object keys of a clean chunk and its quarantine companion. */
export function cleanChunkKeys(stream: string, transformVersion: number, partition: string, stem: string): { clean: string; quarantine: string } {
  const tail = `t${transformVersion}/dt=${partition}/${stem}.parquet`;
  return { clean: `clean/${stream}/${tail}`, quarantine: `quarantine/${stream}/${tail}` };
}

/**
 * Cleans the chunks among `chunks` that have no clean chunk under the current transform version, and answers,
 * per raw chunk id of `chunks`, the clean chunk holding its records. Keys written go to `written` (to delete if
 * the run fails before they are registered; once registered they stay, being valid for later runs). The raw
 * chunks of a partition go into one clean chunk, or with `separately` each into its own (see
 * BatchLayer.cleanDelivered).
 */
export async function cleanRawChunks(
  context: CleanStageContext,
  chunks: readonly ChunkInfo[],
  written: string[],
  separately = false,
): Promise<Map<number, CleanChunkInfo>> {
  const { catalog, store, schemas, stream, source, transformVersion, keys } = context;
  const before = await catalog.cleanChunks(stream.name, transformVersion);
  const cleaned = new Set(before.flatMap((chunk) => chunk.rawChunks));
  const uncleaned = chunks.filter((chunk) => !cleaned.has(chunk.id));
  const groups = groupBy(uncleaned, (chunk) => (separately ? `${chunk.partition}/${chunk.id}` : chunk.partition));
  const added: NewCleanChunk[] = [];
  for (const list of groups.values()) {
    const partition = list[0]!.partition;
    const raw = viewQuery({ kind: 'raw', columns: stream.fields }, await schemas.group(list.map((chunk) => keys.file(store.location(chunk.key), chunk.key))));
    const stem = `${list[0]!.id}-${list[list.length - 1]!.id}-${list.length}`;
    const paths = cleanChunkKeys(stream.name, transformVersion, partition, stem);
    // Clean records first; the quarantined ones are the rest, so a partition whose records all passed (the
    // common case) costs one pass of the rules, and only one with quarantined records a second.
    const clean = await copyToLake(context, source.recordsSql(raw), paths.clean, written);
    const rawRows = list.reduce((sum, chunk) => sum + chunk.rows, 0);
    const quarantine = clean.rows < rawRows ? await copyToLake(context, source.quarantineSql(raw)!, paths.quarantine, written) : null;
    added.push({
      stream: stream.name,
      transformVersion,
      partition,
      cleanKey: paths.clean,
      cleanRows: clean.rows,
      cleanBytes: clean.bytes,
      quarantineKey: quarantine === null ? null : paths.quarantine,
      quarantineRows: quarantine?.rows ?? 0,
      quarantineBytes: quarantine?.bytes ?? 0,
      rawChunks: list.map((chunk) => chunk.id),
    });
  }
  if (added.length > 0) await catalog.commitCleanChunks(added);
  const byRaw = new Map<number, CleanChunkInfo>();
  const wanted = new Set(chunks.map((chunk) => chunk.id));
  for (const chunk of added.length > 0 ? await catalog.cleanChunks(stream.name, transformVersion) : before) {
    for (const raw of chunk.rawChunks) if (wanted.has(raw)) byRaw.set(raw, chunk);
  }
  return byRaw;
}

/** Writes the rows of `sql` as one zstd Parquet file at `key` (encrypted under its partition's key with a keyring). */
async function copyToLake(context: CleanStageContext, sql: string, key: string, written: string[]): Promise<{ rows: number; bytes: number }> {
  const { connection, store, keys } = context;
  const staged = store.stagingPath(key.replace(/\//g, '-'));
  const dataKey = await keys.forWrite(connection, key);
  const copy = `COPY (${sql}) TO ${sqlString(staged)} (${parquetCopyOptions(dataKey)})`;
  const reader = await connection.runAndReadAll(copy);
  const rows = Number(reader.getRows()[0]?.[0] ?? 0);
  const bytes = (await stat(staged)).size;
  await store.publish(staged, key);
  written.push(key);
  return { rows, bytes };
}

/**
 * The clean records of `raw` chunks as SQL, read from their clean chunks: null when the clean chunks covering
 * them also cover chunks not among them (a run that started earlier cleaned past this run's W), in which case
 * the caller cleans the raw chunks itself. One `read_parquet` per data key (with a keyring, per partition): run
 * it after `keys.registerNamed`.
 */
export function cleanChunksSql(
  store: ObjectStore,
  keys: ParquetKeys,
  raw: readonly ChunkInfo[],
  cleanOf: ReadonlyMap<number, CleanChunkInfo>,
  extra = '',
): string | null {
  const ids = new Set(raw.map((chunk) => chunk.id));
  const files = new Map<number, CleanChunkInfo>();
  for (const chunk of raw) {
    const clean = cleanOf.get(chunk.id);
    if (!clean) return null;
    files.set(clean.id, clean);
  }
  for (const clean of files.values()) if (!clean.rawChunks.every((id) => ids.has(id))) return null;
  return lakeFilesSql(store, keys, [...files.values()].map((clean) => clean.cleanKey), extra);
}

/** Lake files of one transform version's clean or quarantine chunks (equal columns: the version's digest covers the raw schema), one `read_parquet` per key; null for none. */
export function lakeFilesSql(store: ObjectStore, keys: ParquetKeys, objectKeys: readonly string[], extra = ''): string | null {
  return readParquetByKey(keys, objectKeys.map((objectKey) => ({ objectKey, location: store.location(objectKey) })), extra);
}
