/** The stream layer's public surface: the {@link Stream} interface, offsets, sharding and the embedded log. */
export { asSeq, type Offset, type RecordBatch, type RecordData, type Seq, type ShardState, type StoredRecord, type Stream } from './types.js';
export { hashPartitionKey, shardForKey, shardHashRange } from './partition.js';
export { EmbeddedStream, logSegmentScope, segmentKeys, UnknownStreamError, type EmbeddedStreamOptions } from './embedded/embedded-stream.js';
export { CorruptLogError, LogFailedError, type CorruptFrameInfo } from './embedded/shard-log.js';
