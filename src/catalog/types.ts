import type { FieldSpec } from '../config/index.js';

/**
 * The catalog role (the Glue Data Catalog in the AWS design): tables, their schema versions, partitions and
 * the chunks (files) that make up each table. A chunk the catalog does not list does not exist: every writer
 * registers its files here in one transaction, after they are durable in the object store.
 */

/** What a table holds. `raw`: a stream's delivered records; `imported`: bulk-imported files. */
export type TableKind = 'raw' | 'imported';

export interface TableInfo {
  readonly name: string;
  readonly kind: TableKind;
  readonly createdAt: string;
  readonly schemaVersion: number;
  readonly columns: readonly FieldSpec[];
  readonly chunks: number;
  readonly rows: number;
  readonly bytes: number;
}

/** What changed from one schema version to the next. */
export interface SchemaChange {
  readonly added: readonly string[];
  /** Columns whose type was widened, e.g. `int → bigint`. */
  readonly widened: readonly { readonly column: string; readonly from: string; readonly to: string }[];
  /** Columns that became nullable. */
  readonly relaxed: readonly string[];
}

export interface SchemaVersion {
  readonly version: number;
  readonly columns: readonly FieldSpec[];
  /** Null for the first version. */
  readonly change: SchemaChange | null;
  readonly createdAt: string;
}

export interface PartitionInfo {
  readonly partition: string;
  readonly chunks: number;
  readonly rows: number;
  readonly bytes: number;
  readonly minTime: string | null;
  readonly maxTime: string | null;
}

/** One file of a table. Delivered chunks carry the offset range they hold; imported ones the source's hash. */
export interface ChunkInfo {
  readonly id: number;
  readonly table: string;
  /** The event-time partition, `YYYY-MM-DD` or `__unknown__`. */
  readonly partition: string;
  /** The object key of the Parquet file. */
  readonly key: string;
  readonly shard: number | null;
  readonly firstSeq: number | null;
  readonly lastSeq: number | null;
  readonly rows: number;
  readonly bytes: number;
  readonly minTime: string | null;
  readonly maxTime: string | null;
  readonly schemaVersion: number;
  readonly source: string;
  readonly createdAt: string;
}

/** A file a writer has made durable and wants registered. */
export interface NewChunkFile {
  readonly partition: string;
  readonly key: string;
  readonly rows: number;
  readonly bytes: number;
  readonly minTime: string | null;
  readonly maxTime: string | null;
}

export interface TableDetail extends TableInfo {
  readonly schemaVersions: readonly SchemaVersion[];
  readonly partitions: readonly PartitionInfo[];
  readonly chunkList: readonly ChunkInfo[];
}

/** The catalog backend (SQLite by default). Every method is atomic; writes are durable when they resolve. */
export interface Catalog {
  /**
   * Registers a table, or a new schema version when `columns` differ from the current one. Added columns,
   * widened types and relaxed nullability are compatible; anything else throws {@link SchemaError}.
   */
  ensureTable(name: string, kind: TableKind, columns: readonly FieldSpec[]): Promise<SchemaVersion>;
  tables(): Promise<TableInfo[]>;
  table(name: string): Promise<TableDetail | null>;
  /** The chunks of a table, oldest first. */
  chunks(table: string): Promise<ChunkInfo[]>;
  /** The last seq of a stream's shard that delivery has registered, 0 before any. */
  deliveredSeq(stream: string, shard: number): Promise<number>;
  /**
   * Registers the files of one delivered chunk (records firstSeq..lastSeq of a shard) and advances the
   * delivered seq to lastSeq, in one transaction. Refuses a range that does not start right after the
   * delivered seq, so a chunk can never be registered twice or leave a gap.
   */
  commitDelivery(stream: string, shard: number, firstSeq: number, lastSeq: number, files: readonly NewChunkFile[]): Promise<void>;
  /** Whether a file with this content hash was imported into the table before. */
  hasImport(table: string, contentHash: string): Promise<boolean>;
  /** Registers the files of one imported source in one transaction. */
  commitImport(table: string, contentHash: string, source: string, files: readonly NewChunkFile[]): Promise<void>;
  /** Every object key the catalog lists, so lake recovery can remove the rest. */
  objectKeys(): Promise<Set<string>>;
  close(): Promise<void>;
}
