/** The ingestion layer's public surface: validation, body parsing and the {@link Ingestor}. */
export { Ingestor, type IngestResult, type IngestStats, type RecordResult } from './ingestor.js';
export { compileRecordValidator, parseTimestamp, type RecordError, type RecordValidator } from './record-validator.js';
export { parseRecords, type BodyFormat } from './parse-body.js';
