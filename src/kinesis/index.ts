/**
 * The Kinesis Data Streams API on Strata's main HTTP port (issue 9): producers and consumers written for Amazon
 * Kinesis work against Strata by changing only their endpoint. AWS Signature V4 authenticates (the access key id
 * is a token's name, the secret access key the token); records go through HTTP ingest's validation, and those the
 * schema refuses are quarantined rather than failed (see quarantine-store.ts).
 */
export { registerKinesisRoutes, KINESIS_ROUTE, MAX_KINESIS_BODY_BYTES } from './kinesis-routes.js';
export { KinesisApi, MAX_PUT_REQUEST_BYTES, MAX_RECORD_DATA_BYTES, MAX_RECORDS_PER_PUT, type KinesisCaller } from './kinesis-api.js';
export { KinesisIngest, type PutEntry, type PutOutcome } from './kinesis-ingest.js';
export { KinesisState } from './kinesis-state.js';
export { KinesisQuarantine, type QuarantinedRecord } from './quarantine-store.js';
export { KinesisError, type KinesisErrorType } from './errors.js';
export { decodeSequenceNumber, encodeSequenceNumber, parseShardId, shardIdOf, type SequenceKind } from './sequence-numbers.js';
export { ITERATOR_LIFETIME_MS, ShardIterators, type IteratorPosition } from './shard-iterators.js';
export { MAX_CLOCK_SKEW_MS, NodeSha256, readSignatureClaim, signatureMatches } from './sigv4.js';
