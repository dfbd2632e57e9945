/**
 * The batch layer: runs that compute every view over exactly the chunks a watermark W covers, write a new
 * view version of partial files, and publish it atomically with W; and the `<view>__batch` SQL tables over the
 * current versions.
 */
export {
  BatchLayer,
  BatchRunningError,
  planVersion,
  type PartitionTask,
  type BatchLayerOptions,
  type BatchRequest,
  type BatchRunState,
  type BatchRunStatus,
} from './batch-layer.js';
export { batchTableName, batchTables } from './batch-tables.js';
export { cleanChunkKeys } from './clean-stage.js';
export { cleanTables } from './clean-tables.js';
export { batchPartialRelations, batchTableSql, PARTITION_OF_PARTIAL, partialRelations, planHash, type PartialRelation } from './partials.js';
