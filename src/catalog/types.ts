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

/** A source file imported into a table: where it was read from and when it was registered. */
export interface ImportRecord {
  readonly source: string;
  readonly importedAt: string;
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

/**
 * A batch watermark W: per stream, per shard (a decimal string key), the last seq W covers. Everything a
 * shard delivered up to its seq is in; nothing after it is.
 */
export type Watermark = Readonly<Record<string, Readonly<Record<string, number>>>>;

/** The chunks of some tables and the delivered seq of every shard, read in one catalog transaction. */
export interface ChunkSnapshot {
  /** Per table, its chunks, oldest first. */
  readonly chunks: ReadonlyMap<string, readonly ChunkInfo[]>;
  /** Per stream, per shard that delivered anything, the delivered seq: equal to the chunks' last seqs. */
  readonly delivered: Watermark;
}

/** One Parquet file of a view version: one partial relation (`scalar`, `hll_<measure>`...) of one source partition. */
export interface ViewFile {
  readonly relation: string;
  /** The source's event-time partition the partials were computed over, `YYYY-MM-DD` or `__unknown__`. */
  readonly partition: string;
  readonly key: string;
  readonly rows: number;
  readonly bytes: number;
}

/** A view version a batch run wants registered and made current. */
export interface NewViewVersion {
  readonly view: string;
  readonly version: number;
  /** The watermark of the run: the version covers every delivered chunk at or below it. */
  readonly watermark: Watermark;
  /** The largest chunk id of an imported chunk (no offsets) of the source it covers; 0 for none. */
  readonly maxImportChunk: number;
  /** A digest of the view's partial plan: files of a version with another plan are never reused. */
  readonly planHash: string;
  readonly fromScratch: boolean;
  /** Every file of the version: new ones, and older versions' files it reuses by reference. */
  readonly files: readonly ViewFile[];
}

export interface ViewVersionInfo extends NewViewVersion {
  readonly createdAt: string;
  /** Whether it is the view's current version. */
  readonly current: boolean;
}

/** One version of a stream's transform rules: a new one whenever the rules (their generated SQL) change. */
export interface TransformVersionInfo {
  readonly stream: string;
  readonly version: number;
  /** The digest of the rules' SQL (see src/transform/compile-transform.ts). */
  readonly digest: string;
  /** The rules as declared, JSON: what `GET /v1/catalog/tables/{stream}` shows of each version. */
  readonly rules: string;
  readonly createdAt: string;
}

/**
 * The cleaning of some raw chunks of one partition under one transform version (the Glue ETL job's output):
 * one Parquet file of clean records under `clean/<stream>/`, one of the quarantined ones under
 * `quarantine/<stream>/` when there are any, and the raw chunks they come from (lineage).
 */
export interface CleanChunkInfo {
  readonly id: number;
  readonly stream: string;
  readonly transformVersion: number;
  readonly partition: string;
  readonly cleanKey: string;
  readonly cleanRows: number;
  readonly cleanBytes: number;
  /** Null when no record of the raw chunks was quarantined. */
  readonly quarantineKey: string | null;
  readonly quarantineRows: number;
  readonly quarantineBytes: number;
  /** The ids of the raw chunks cleaned into this one. */
  readonly rawChunks: readonly number[];
  readonly createdAt: string;
}

export type NewCleanChunk = Omit<CleanChunkInfo, 'id' | 'createdAt'>;

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
  /** The first import of this content into the table (its source path and when), or null if there was none. */
  findImport(table: string, contentHash: string): Promise<ImportRecord | null>;
  /** Registers the files of one imported source in one transaction. */
  commitImport(table: string, contentHash: string, source: string, files: readonly NewChunkFile[]): Promise<void>;
  /**
   * The chunks of `tables` and the delivered seq of every shard, read in one transaction, so that a batch
   * watermark and the chunk set it names agree.
   */
  snapshot(tables: readonly string[]): Promise<ChunkSnapshot>;
  /** A view's versions, newest first. */
  viewVersions(view: string): Promise<ViewVersionInfo[]>;
  /** Per view that has one, its current version number. */
  currentViewVersions(): Promise<Map<string, number>>;
  /**
   * Registers view versions and makes each its view's current version, all in one transaction (readers see
   * the old versions or the new ones, never a mix); then forgets versions beyond the newest `keepVersions`
   * of each view. Answers the keys of files no remaining version lists, for the caller to delete.
   */
  publishViewVersions(versions: readonly NewViewVersion[], keepVersions: number): Promise<string[]>;
  /**
   * The number of a stream's transform rules with this digest: the existing version's, or a new version's
   * (registered with the rules as declared) when the rules changed.
   */
  ensureTransformVersion(stream: string, digest: string, rules: string): Promise<TransformVersionInfo>;
  /** A stream's transform versions, oldest first. */
  transformVersions(stream: string): Promise<TransformVersionInfo[]>;
  /** The clean chunks of a stream under one transform version, oldest first. */
  cleanChunks(stream: string, transformVersion: number): Promise<CleanChunkInfo[]>;
  /** The id of a stream's newest clean chunk under a transform version, 0 for none: what changes when one is added. */
  lastCleanChunk(stream: string, transformVersion: number): Promise<number>;
  /** Registers clean chunks and their lineage in one transaction; a raw chunk already cleaned under the version throws. */
  commitCleanChunks(chunks: readonly NewCleanChunk[]): Promise<void>;
  /** Forgets a stream's clean chunks of every transform version but `keep`; answers their keys, for the caller to delete. */
  dropCleanChunks(stream: string, keep: number): Promise<string[]>;
  /** Every object key the catalog lists, so lake recovery can remove the rest. */
  objectKeys(): Promise<Set<string>>;
  close(): Promise<void>;
}

/**
 * An API token as the catalog keeps it: its name, policies and times, and the SHA-256 of the token, never the
 * token in the clear (a token is shown once, at creation).
 */
export interface StoredToken {
  readonly name: string;
  /** Hex SHA-256 of the token's text. */
  readonly hash: string;
  readonly policies: readonly string[];
  readonly createdAt: string;
  readonly lastUsedAt: string | null;
  /**
   * The token's SCRAM-SHA-256 verifier (salted hashes, `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`),
   * for the PostgreSQL listener; null for tokens made before verifiers were kept.
   */
  readonly scram: string | null;
  /**
   * The token's text sealed under the server key (src/security/server-key.ts), for AWS Signature V4 (the Kinesis
   * API), which needs the secret itself; null (or absent) for tokens made before, or without a server key.
   */
  readonly sealedSecret?: string | null;
}

/**
 * One audit log entry: who did or was refused what, when. Never a token or a record's content: `route` is the
 * route's pattern (`POST /v1/tokens`), not the URL with its query string.
 */
export interface AuditEntry {
  readonly time: string;
  /** The token's name; null when the call carried no valid token. */
  readonly token: string | null;
  readonly action: string;
  readonly resource: string;
  /** `denied` (403), `unauthenticated` (401), or what an admin action did: `created`, `revoked`, `succeeded`, `failed`. */
  readonly outcome: string;
  readonly route: string | null;
  /** The client's address. */
  readonly client: string | null;
}

export interface AuditRow extends AuditEntry {
  readonly id: number;
}

/**
 * Where src/security keeps API tokens and the audit log: beside the catalog's tables in the same database, so
 * that one backend holds all of Strata's metadata. Every method is atomic; writes are durable when they resolve.
 */
export interface SecurityStore {
  tokens(): Promise<StoredToken[]>;
  /** Adds a token; throws {@link TokenExistsError} when the name is taken. */
  addToken(token: StoredToken): Promise<void>;
  /** Deletes a token by name; answers whether there was one. */
  removeToken(name: string): Promise<boolean>;
  /** Records last-used times (ISO-8601), by token name; names no longer present are skipped. */
  touchTokens(lastUsed: ReadonlyMap<string, string>): Promise<void>;
  appendAudit(entries: readonly AuditEntry[]): Promise<void>;
  /** Audit rows with an id above `afterId`, oldest first, at most `limit`. */
  auditRows(afterId: number, limit: number): Promise<AuditRow[]>;
}
