import { createHash } from 'node:crypto';
import type { ViewFile } from '../catalog/index.js';
import type { FieldSpec } from '../config/index.js';
import type { ObjectStore } from '../lake/index.js';
import { ParquetKeys, readParquetByKey } from '../lake/parquet-encryption.js';
import type { Keyring } from '../security/keyring.js';
import {
  foldPartialSql,
  mergeSql,
  scalarPartialSql,
  sketchMeasures,
  sketchPartialSql,
  type PartialRelations,
  type ViewDefinition,
} from '../views/index.js';

/** The column each partial file carries beside the partials: the source partition it was computed over. */
export const PARTITION_OF_PARTIAL = '__dt';

/**
 * One relation of a view's partials: `scalar`, or `sketch<i>` for the i-th approximate measure. The name is
 * part of the object key (`views/<view>/v=<n>/<relation>/dt=<partition>/part.parquet`), so it is an index,
 * never a user-chosen measure name.
 */
export interface PartialRelation {
  readonly name: string;
  /** The measure a sketch relation belongs to; null for `scalar`. */
  readonly measure: string | null;
  /** The partial SQL over `source` (SQL yielding the source's columns). */
  sql(source: string): string;
  /** The relation's rows in `source` folded into one row per group (and sketch bucket): see foldPartialSql. */
  fold(source: string): string;
}

/** The partial relations of a view, in a fixed order. */
export function partialRelations(view: ViewDefinition): PartialRelation[] {
  return [
    { name: 'scalar', measure: null, sql: (source: string) => scalarPartialSql(view, source), fold: (source: string) => foldPartialSql(view, null, source) },
    ...sketchMeasures(view).map((measure, i) => ({
      name: `sketch${i}`,
      measure: measure.name,
      sql: (source: string) => sketchPartialSql(view, measure, source),
      fold: (source: string) => foldPartialSql(view, measure, source),
    })),
  ];
}

/**
 * A digest of everything a partial file depends on besides its input rows: the partial SQL of every relation
 * and the source's columns. A version whose plan differs is never reused from (the view's SQL changed, or the
 * stream's schema did), so such a run recomputes every partition.
 */
export function planHash(view: ViewDefinition, fields: readonly FieldSpec[], transformVersion: string | null = null): string {
  const plan = partialRelations(view).map((relation) => [relation.name, relation.sql('<source>')]);
  // Without a transform the digest is what it was before transforms existed, so no version is recomputed for it.
  const transform = transformVersion === null ? {} : { transformVersion };
  return createHash('sha256').update(JSON.stringify({ plan, fields, ...transform })).digest('hex').slice(0, 16);
}

/**
 * The SQL of `<view>__batch`: the view's merge over a version's partial files, each relation the union of its
 * partition files (read without Hive partitioning: the `dt=`/`v=` folders are layout, not columns). A relation
 * without files (no version yet, or a source with no rows) is the partial plan over an empty source, so the
 * table always has the view's columns and types.
 */
export function batchTableSql(
  view: ViewDefinition,
  emptySource: string,
  files: readonly ViewFile[],
  store: ObjectStore,
  keyring: Keyring | null = null,
): string {
  return mergeSql(view, batchPartialRelations(view, emptySource, files, store, keyring));
}

/**
 * A version's partial relations as SQL over its files (the partition column dropped), for a merge over the
 * batch layer alone or over the batch and speed layers together.
 *
 * With a keyring, files encrypted under the key of their version's partition (src/lake/parquet-encryption.ts)
 * are read with one `read_parquet` per key, joined by UNION ALL BY NAME; a file whose scope has no key was
 * written plain (before the master key was set) and is read with the other plain files. The SQL names the
 * keys it reads with, and whoever runs it registers them with its DuckDB ({@link ParquetKeys.registerNamed}).
 */
export function batchPartialRelations(
  view: ViewDefinition,
  /** An empty relation with the columns the view reads (RecordSource.emptySql). */
  emptySource: string,
  files: readonly ViewFile[],
  store: ObjectStore,
  keyring: Keyring | null = null,
): PartialRelations {
  const keys = new ParquetKeys(keyring);
  const relationSql = (relation: PartialRelation): string => {
    const objects = files.filter((file) => file.relation === relation.name).map((file) => ({ objectKey: file.key, location: store.location(file.key) }));
    return readParquetByKey(keys, objects, ', hive_partitioning = false', `* EXCLUDE (${PARTITION_OF_PARTIAL})`) ?? relation.sql(emptySource);
  };
  const relations = partialRelations(view);
  const sketches: Record<string, string> = {};
  for (const relation of relations) if (relation.measure !== null) sketches[relation.measure] = relationSql(relation);
  return { scalar: relationSql(relations[0]!), sketches };
}
