/**
 * The stream role (Kinesis Data Streams in the AWS design): a durable, sharded, append-only log.
 * Layers talk to it only through {@link Stream}; the embedded segment log is the default backend.
 */

/** A record's position within one shard. Strictly increasing, never reused, starts at 1. */
export type Seq = number & { readonly __brand: 'Seq' };

/** Wraps a plain number as a {@link Seq}, asserting it is a valid sequence number. */
export function asSeq(n: number): Seq {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`invalid sequence number ${n}`);
  return n as Seq;
}

/** Where an accepted record lives: the answer to every producer ack. */
export interface Offset {
  readonly stream: string;
  readonly shard: number;
  readonly seq: Seq;
}

/** A record to append: its bytes, or text to store as UTF-8. */
export type RecordData = Buffer | string;

/** One record read back from a shard. `data` is the bytes the producer's record was stored as. */
export interface StoredRecord {
  readonly seq: Seq;
  /** When the log accepted the record, in ms since the epoch (Kinesis' ApproximateArrivalTimestamp). */
  readonly appendedAt: number;
  readonly data: Buffer;
}

/**
 * Consecutive records of one shard read in bulk, without an object per record: for consumers that move many
 * records at once (delivery), where per-record objects would cost more than the work itself.
 */
export interface RecordBatch {
  /** The seq of the first record; the others follow consecutively. */
  readonly firstSeq: Seq;
  readonly count: number;
  /** Bytes read, framing included: a bound on the records' size. */
  readonly bytes: number;
  /** When the first record was appended, in ms since the epoch. */
  readonly firstAppendedAt: number;
  /** Calls `visit` for each record in seq order with its bytes as `body[start, end)`, valid during the call. */
  forEach(visit: (seq: number, body: Buffer, start: number, end: number) => void): void;
}

/** The state of one shard, as `GET /v1/streams` shows it. */
export interface ShardState {
  readonly shard: number;
  /** The seq of the oldest record still kept, or null when the shard holds none. */
  readonly firstSeq: Seq | null;
  /** The seq of the newest durable record, 0 when nothing was ever appended. */
  readonly lastSeq: Seq;
  readonly bytes: number;
  readonly segments: number;
}

/**
 * The stream backend. One instance serves every stream of a project.
 * Reads see only durable records: a record is readable once its append has resolved.
 */
export interface Stream {
  /** The shards of a stream, with their positions. */
  shards(stream: string): ShardState[];
  /**
   * Appends records to one shard and resolves, with the seq of the first, once all of them are durable
   * (they survive a process kill or a power cut). Seqs are consecutive within one call. A record is its bytes,
   * or text stored as UTF-8 (which spares the hot path a buffer per record).
   */
  append(stream: string, shard: number, records: readonly RecordData[]): Promise<Seq>;
  /** Reads up to `limit` durable records with seq >= `fromSeq`, in seq order. */
  read(stream: string, shard: number, fromSeq: Seq, limit: number): Promise<StoredRecord[]>;
  /** As {@link read}, in bulk: the records as one {@link RecordBatch}. */
  readBatch(stream: string, shard: number, fromSeq: Seq, limit: number): Promise<RecordBatch>;
  /**
   * Resolves when the shard's last durable seq exceeds `afterSeq`, or after `timeoutMs`, whichever is first;
   * answers the last durable seq then. Lets consumers tail the log without polling.
   */
  waitForAppend(stream: string, shard: number, afterSeq: Seq, timeoutMs: number): Promise<Seq>;
  /**
   * Saves a named consumer's position: everything up to and including `seq` is done with.
   * Retention keeps every record some consumer has not checkpointed past.
   */
  commitCheckpoint(consumer: string, stream: string, shard: number, seq: Seq): Promise<void>;
  /** A consumer's saved position, 0 when it has none. */
  checkpoint(consumer: string, stream: string, shard: number): Seq;
  /** Deletes whole segments that every consumer has checkpointed past; answers how many went. */
  applyRetention(): Promise<number>;
  close(): Promise<void>;
}
