/** Bulk import (the Glue/DMS batch-ingestion role): NDJSON, CSV and Parquet files into the master dataset. */
export {
  FORMAT_NAMES,
  importFiles,
  planImport,
  runImport,
  type ImportFileResult,
  type ImportOptions,
  type ImportParts,
  type ImportPlan,
  type ImportProgress,
  type ImportResult,
} from './import-files.js';
export { ImportJobs, type ImportJobFile, type ImportJobLimits, type ImportJobView } from './import-jobs.js';
export type { ImportFormatName } from './format.js';
