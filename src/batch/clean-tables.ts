import type { Catalog, ChunkInfo, CleanChunkInfo } from '../catalog/index.js';
import type { ObjectStore } from '../lake/index.js';
import { ParquetKeys } from '../lake/parquet-encryption.js';
import type { Keyring } from '../security/index.js';
import type { DerivedTable } from '../sql/index.js';
import { cleanTableName, quarantineTableName, type RecordSource } from '../transform/index.js';
import { quoteIdent } from '../util/duckdb.js';
import { lakeFilesSql } from './clean-stage.js';

/**
 * `<stream>__clean` (the records its views read, de-duplicated) and `<stream>__quarantine` (the records the
 * rules refused, raw values and `__quarantine_reason`) as SQL tables, for each stream with a transform.
 *
 * Each reads the clean (or quarantine) chunks the batch layer wrote under the current transform version, plus
 * the rules applied at query time to the raw records no clean chunk holds yet (just delivered, or all of them
 * after a rules change until a run cleans them), so the tables cover everything the lake holds and follow the
 * current rules. When the clean chunks are not the raw chunks up to some seq per shard (an import not cleaned
 * yet), the rules run over the whole raw table. The state is the transform version, the newest clean chunk and the
 * raw chunk count, so the engine rebuilds the tables when clean chunks are added or a chunk is registered.
 */
export function cleanTables(
  catalog: Catalog,
  store: ObjectStore,
  sources: ReadonlyMap<string, RecordSource>,
  transformVersionOf: (stream: string) => number | null,
  keyring: Keyring | null = null,
): () => Promise<DerivedTable[]> {
  // Only to name each file's key in the SQL; the SQL engine registers them with its own instance.
  const keys = new ParquetKeys(keyring);
  return async () => {
    const tables: DerivedTable[] = [];
    const withTransform = [...sources.values()].filter((source) => source.transformVersion !== null && transformVersionOf(source.stream) !== null);
    if (withTransform.length === 0) return tables;
    const rawChunks = new Map((await catalog.tables()).map((table) => [table.name, table.chunks]));
    for (const source of withTransform) {
      const version = transformVersionOf(source.stream)!;
      // New raw chunks count too: one that is imported (not after any seq) is outside the rest until rebuilt.
      const state = `${version}/${await catalog.lastCleanChunk(source.stream, version)}/${rawChunks.get(source.stream) ?? 0}`;
      const parts = async () => cleanParts(catalog, source.stream, version);
      const raw = `SELECT * FROM ${quoteIdent(source.stream)}`;
      tables.push(
        {
          name: cleanTableName(source.stream),
          state,
          sql: async () => {
            const { files, rest } = await parts();
            if (rest === null) return source.dedupedSql(raw);
            const clean = files.map((clean) => clean.cleanKey);
            return source.dedupe === null && clean.length === 0 ? source.recordsSql(raw) : source.dedupedSql(unionSql(store, keys, clean, source.recordsSql(rest)));
          },
        },
        {
          name: quarantineTableName(source.stream),
          state,
          sql: async () => {
            const { files, rest } = await parts();
            const all = source.quarantineSql(raw)!;
            if (rest === null) return all;
            const quarantined = files.flatMap((clean) => (clean.quarantineKey === null ? [] : [clean.quarantineKey]));
            return unionSql(store, keys, quarantined, source.quarantineSql(rest)!);
          },
        },
      );
    }
    return tables;
  };
}

/** Lake files, then the rows of `rest`, by column name. */
function unionSql(store: ObjectStore, keys: ParquetKeys, objectKeys: readonly string[], rest: string): string {
  const files = lakeFilesSql(store, keys, objectKeys);
  return files === null ? rest : `${files} UNION ALL BY NAME SELECT * FROM (${rest}) AS rest`;
}

/**
 * The clean chunks of a stream under a version, and SQL over the raw table for the records none of them holds:
 * rows past the last cleaned seq of each shard. `rest` is null when the clean chunks are not such a prefix of
 * every shard, or an imported chunk is not cleaned yet.
 */
async function cleanParts(catalog: Catalog, stream: string, version: number): Promise<{ files: CleanChunkInfo[]; rest: string | null }> {
  const files = await catalog.cleanChunks(stream, version);
  const covered = new Set(files.flatMap((clean) => clean.rawChunks));
  const byShard = new Map<number, ChunkInfo[]>();
  for (const chunk of await catalog.chunks(stream)) {
    if (chunk.shard === null) {
      if (!covered.has(chunk.id)) return { files, rest: null };
      continue;
    }
    (byShard.get(chunk.shard) ?? byShard.set(chunk.shard, []).get(chunk.shard)!).push(chunk);
  }
  const after: string[] = [];
  for (const [shard, chunks] of byShard) {
    chunks.sort((a, b) => (a.firstSeq ?? 0) - (b.firstSeq ?? 0));
    const prefix = chunks.findIndex((chunk) => !covered.has(chunk.id));
    if (prefix !== -1 && chunks.slice(prefix).some((chunk) => covered.has(chunk.id))) return { files, rest: null };
    const last = prefix === 0 ? 0 : (chunks[(prefix === -1 ? chunks.length : prefix) - 1]!.lastSeq ?? 0);
    after.push(`(__shard = ${shard} AND __seq > ${last})`);
  }
  // A shard with no chunk yet has every future record uncleaned: `__shard` not listed passes. Imported rows (no
  // shard) are all in clean chunks by now, so none passes.
  const listed = [...byShard.keys()];
  const unlisted = listed.length === 0 ? '__shard IS NOT NULL' : `__shard NOT IN (${listed.join(', ')})`;
  const raw = `SELECT * FROM ${quoteIdent(stream)} WHERE ${[...after, unlisted].join(' OR ')}`;
  return { files, rest: raw };
}
