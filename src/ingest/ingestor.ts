import type { ProjectConfig, StreamConfig } from '../config/index.js';
import { OverloadedError } from '../errors.js';
import { shardForKey, UnknownStreamError, type Seq, type Stream } from '../stream/index.js';
import { compileRecordValidator, type RecordError, type RecordValidator } from './record-validator.js';

/** The fate of one record of a request, in request order. */
export type RecordResult = { readonly shard: number; readonly seq: Seq } | { readonly error: RecordError };

export interface IngestResult {
  readonly results: RecordResult[];
  readonly failed: number;
}

/** Counters of one stream since the process started, and its recent rate. */
export interface IngestStats {
  readonly accepted: number;
  readonly failed: number;
  readonly bytes: number;
  /** Accepted records per second over the last few seconds. */
  readonly recordsPerSecond: number;
}

/** Seconds of history the records/s figure averages over. */
const RATE_WINDOW_SECONDS = 5;

class RateMeter {
  private readonly buckets = new Float64Array(RATE_WINDOW_SECONDS + 1);
  private currentSecond = Math.floor(Date.now() / 1000);

  add(count: number): void {
    this.advance();
    this.buckets[this.currentSecond % this.buckets.length]! += count;
  }

  /** Average over the last full seconds, leaving out the one in progress. */
  perSecond(): number {
    this.advance();
    let sum = 0;
    for (let i = 0; i < this.buckets.length; i++) {
      if (i !== this.currentSecond % this.buckets.length) sum += this.buckets[i]!;
    }
    return sum / RATE_WINDOW_SECONDS;
  }

  private advance(): void {
    const now = Math.floor(Date.now() / 1000);
    const steps = Math.min(now - this.currentSecond, this.buckets.length);
    for (let i = 1; i <= steps; i++) this.buckets[(this.currentSecond + i) % this.buckets.length] = 0;
    this.currentSecond = Math.max(now, this.currentSecond);
  }
}

interface StreamIngest {
  readonly config: StreamConfig;
  readonly validate: RecordValidator;
  roundRobin: number;
  accepted: number;
  failed: number;
  bytes: number;
  readonly rate: RateMeter;
}

/**
 * The ingestion layer: validates records against their stream's schema, routes each to its shard by
 * partition key, appends them to the stream and answers, per record, its offset or its error. Valid records
 * are accepted even when others in the same request fail, as Kinesis PutRecords does. The answer comes only
 * once every accepted record is durable.
 *
 * Queued work is bounded: when records waiting for their sync exceed `maxPendingBytes`, a request is
 * refused whole with {@link OverloadedError} before anything of it is written.
 */
export class Ingestor {
  private readonly streams = new Map<string, StreamIngest>();
  private readonly maxPendingBytes: number;
  private pendingBytes = 0;

  constructor(
    private readonly stream: Stream,
    config: ProjectConfig,
  ) {
    this.maxPendingBytes = config.ingest.maxPendingBytes;
    for (const streamConfig of config.streams.values()) {
      this.streams.set(streamConfig.name, {
        config: streamConfig,
        validate: compileRecordValidator(streamConfig),
        roundRobin: 0,
        accepted: 0,
        failed: 0,
        bytes: 0,
        rate: new RateMeter(),
      });
    }
  }

  /** Throws {@link UnknownStreamError} for a stream the config does not declare. */
  private target(name: string): StreamIngest {
    const target = this.streams.get(name);
    if (!target) throw new UnknownStreamError(`unknown stream "${name}"`);
    return target;
  }

  /** Checks that a stream exists, before a caller spends time reading its request body. */
  assertStream(name: string): void {
    this.target(name);
  }

  /**
   * Ingests records in order. `texts`, when given, holds each record's JSON text as the producer sent it:
   * a record that validation did not rewrite is stored as that text, sparing a serialization.
   */
  async ingest(streamName: string, records: readonly unknown[], texts: readonly string[] | null = null): Promise<IngestResult> {
    const target = this.target(streamName);
    const { config } = target;
    const results: RecordResult[] = new Array<RecordResult>(records.length);
    const byShard: string[][] = Array.from({ length: config.shards }, () => []);
    const positions: number[][] = Array.from({ length: config.shards }, () => []);
    let failed = 0;
    let bytes = 0;
    for (let i = 0; i < records.length; i++) {
      const record = records[i];
      const validation = target.validate(record);
      if (typeof validation === 'object') {
        results[i] = { error: validation };
        failed++;
        continue;
      }
      const shard = this.shardOf(target, record as Record<string, unknown>);
      const data = validation === 'unchanged' && texts !== null ? texts[i]! : JSON.stringify(record);
      bytes += data.length;
      byShard[shard]!.push(data);
      positions[shard]!.push(i);
    }
    target.failed += failed;
    if (bytes > 0) {
      if (this.pendingBytes + bytes > this.maxPendingBytes) {
        throw new OverloadedError(`ingest is over its bound of ${this.maxPendingBytes} bytes waiting for disk; retry shortly`);
      }
      this.pendingBytes += bytes;
      try {
        await Promise.all(
          byShard.map(async (shardRecords, shard) => {
            if (shardRecords.length === 0) return;
            const first = await this.stream.append(streamName, shard, shardRecords);
            const at = positions[shard]!;
            for (let k = 0; k < at.length; k++) results[at[k]!] = { shard, seq: (first + k) as Seq };
          }),
        );
      } finally {
        this.pendingBytes -= bytes;
      }
      const accepted = records.length - failed;
      target.accepted += accepted;
      target.bytes += bytes;
      target.rate.add(accepted);
    }
    return { results, failed };
  }

  private shardOf(target: StreamIngest, record: Record<string, unknown>): number {
    const { partitionKey, shards } = target.config;
    if (shards === 1) return 0;
    const key = partitionKey === null ? null : record[partitionKey];
    if (key === null || key === undefined) return target.roundRobin++ % shards;
    return shardForKey(typeof key === 'string' ? key : String(key), shards);
  }

  /**
   * Counts records another edge appended to the stream itself (the Kinesis API, which routes and quarantines its
   * own way), so that `GET /v1/streams` and `strata status` show every producer's records.
   */
  count(streamName: string, accepted: number, bytes: number): void {
    const target = this.target(streamName);
    target.accepted += accepted;
    target.bytes += bytes;
    target.rate.add(accepted);
  }

  stats(streamName: string): IngestStats {
    const target = this.target(streamName);
    return {
      accepted: target.accepted,
      failed: target.failed,
      bytes: target.bytes,
      recordsPerSecond: target.rate.perSecond(),
    };
  }
}
