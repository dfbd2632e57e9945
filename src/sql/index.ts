/**
 * The ad-hoc SQL layer (the Athena role): read-only DuckDB SQL over the master dataset, one view per catalog
 * table over exactly its registered files.
 */
export {
  SqlEngine,
  type QueryAllOptions,
  type QueryOptions,
  type SqlAnswer,
  type SqlColumn,
  type SqlEngineOptions,
  type SqlStream,
  type DerivedTable,
} from './sql-engine.js';
export { queryReads, type QueryReads } from './query-reads.js';
export { isoTimestamp, toJsonValue, typeName, type SqlRow, type SqlValue } from './json-values.js';
export { PARTITION_COLUMN, viewColumns, viewQuery, type ViewColumn } from './lake-views.js';
