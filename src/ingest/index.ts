/** The ingestion layer's public surface: validation, body parsing and the {@link Ingestor}. */
export { Ingestor, type IngestResult, type IngestStats, type RecordResult } from './ingestor.js';
export { compileRecordValidator, parseTimestamp, type RecordError, type RecordValidator, type Validation } from './record-validator.js';
export { parseRecords, type BodyFormat, type ParsedBody } from './parse-body.js';
export * from './import/index.js';
