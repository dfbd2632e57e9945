/** The catalog layer's public surface: the {@link Catalog} interface and its SQLite backend. */
export type {
  AuditEntry,
  AuditRow,
  SecurityStore,
  StoredToken,
  Catalog,
  ChunkInfo,
  CleanChunkInfo,
  NewCleanChunk,
  TransformVersionInfo,
  ChunkSnapshot,
  NewViewVersion,
  ViewFile,
  ViewVersionInfo,
  Watermark,
  ImportRecord,
  NewChunkFile,
  PartitionInfo,
  SchemaChange,
  SchemaVersion,
  TableDetail,
  TableInfo,
  TableKind,
} from './types.js';
export { diffSchemas } from './schema-evolution.js';
export { CatalogInvariantError, SqliteCatalog, TokenExistsError } from './sqlite/sqlite-catalog.js';
