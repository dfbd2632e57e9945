import type { ProjectConfig, StreamConfig } from '../config/index.js';
import { OverloadedError } from '../errors.js';
import { compileRecordValidator, type RecordValidator } from '../ingest/index.js';
import { shardForKey, type Stream } from '../stream/index.js';
import type { KinesisQuarantine, QuarantinedRecord } from './quarantine-store.js';
import { encodeSequenceNumber } from './sequence-numbers.js';

/** One record of a PutRecord(s) call, decoded. */
export interface PutEntry {
  readonly data: Buffer;
  readonly partitionKey: string;
  /** ExplicitHashKey, checked to lie in the 32-bit hash space; null when not given. */
  readonly explicitHashKey: number | null;
}

/** The fate of one record: where it went (the log, or the quarantine when the schema refuses it), or why it failed. */
export type PutOutcome =
  | { readonly shard: number; readonly sequenceNumber: string; readonly quarantined: boolean }
  | { readonly errorCode: 'ProvisionedThroughputExceededException' | 'InternalFailure'; readonly errorMessage: string };

interface Target {
  readonly config: StreamConfig;
  readonly validate: RecordValidator;
}

/**
 * Kinesis puts: each record's Data is parsed as one JSON record and checked by the very validator HTTP ingest uses
 * (src/ingest/record-validator.ts), then appended to its shard of the log; the answer comes once every accepted
 * record is durable, as HTTP ingest's does.
 *
 * Where Kinesis differs from HTTP ingest, and why:
 * - A record the schema refuses (or Data that is no JSON object) is accepted into the stream's quarantine
 *   (quarantine-store.ts) instead of failed: Kinesis producers retry failed records until they succeed.
 *   Only overload (ProvisionedThroughputExceededException) and internal errors (InternalFailure) fail a record.
 * - The shard: the record's value of the stream's `partitionKey` field when the record has one (exactly as HTTP
 *   ingest routes it, so a key's records share a shard whichever API sent them), else the ExplicitHashKey when given,
 *   else the Kinesis PartitionKey, hashed as Strata hashes keys (src/stream/partition.ts). HTTP ingest spreads
 *   records without a key round-robin; a Kinesis record always carries a PartitionKey, so it never needs to.
 *
 * This path calls the validator and the log itself rather than {@link Ingestor.ingest}, which would pick the shard
 * round-robin for a record without the key field; it reports what it appended to the Ingestor's counters
 * (`counted`), so `GET /v1/streams` shows Kinesis producers too. Its own bound on bytes waiting for their sync
 * mirrors the Ingestor's, `ingest.maxPendingBytes`.
 */
export class KinesisIngest {
  private readonly targets = new Map<string, Target>();
  private readonly maxPendingBytes: number;
  private pendingBytes = 0;

  constructor(
    private readonly stream: Stream,
    config: ProjectConfig,
    private readonly quarantine: KinesisQuarantine,
    /** Told the records each put appended to the log (accepted into the stream, quarantined ones aside) and their bytes. */
    private readonly counted: (stream: string, accepted: number, bytes: number) => void = () => undefined,
  ) {
    this.maxPendingBytes = config.ingest.maxPendingBytes;
    for (const streamConfig of config.streams.values()) {
      this.targets.set(streamConfig.name, { config: streamConfig, validate: compileRecordValidator(streamConfig) });
    }
  }

  /** Whether the config declares the stream. */
  has(stream: string): boolean {
    return this.targets.has(stream);
  }

  /** Puts records in order and answers each one's outcome, once every accepted record is durable. */
  async put(streamName: string, entries: readonly PutEntry[]): Promise<PutOutcome[]> {
    const target = this.targets.get(streamName);
    if (target === undefined) throw new Error(`no stream "${streamName}"`);
    const shards = target.config.shards;
    const outcomes = new Array<PutOutcome>(entries.length);
    const byShard: string[][] = Array.from({ length: shards }, () => []);
    const positions: number[][] = Array.from({ length: shards }, () => []);
    const quarantined: QuarantinedRecord[] = [];
    const quarantinedAt: number[] = [];
    let bytes = 0;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i]!;
      const text = entry.data.toString('utf8');
      let record: unknown;
      let reason: string | null = null;
      try {
        record = JSON.parse(text);
      } catch (error) {
        reason = `schema: Data is not a JSON record (${(error as Error).message})`;
      }
      if (reason === null) {
        const validation = target.validate(record);
        if (typeof validation === 'object') {
          reason = `schema: ${schemaReason(validation.field, validation.message)}`;
        } else {
          const shard = this.shardOf(target.config, record as Record<string, unknown>, entry);
          // The log's records are compact JSON objects, one per NDJSON line once delivered: the producer's text is
          // kept only when validation left it alone and it has no line break or surrounding whitespace.
          const data = validation === 'unchanged' && isCompactObjectText(text) ? text : JSON.stringify(record);
          bytes += data.length;
          byShard[shard]!.push(data);
          positions[shard]!.push(i);
          continue;
        }
      }
      // A refused record goes to the shard its key field names when it has one, as it would have when valid.
      const object = typeof record === 'object' && record !== null && !Array.isArray(record) ? (record as Record<string, unknown>) : null;
      quarantined.push({ shard: this.shardOf(target.config, object, entry), partitionKey: entry.partitionKey, reason, data: entry.data });
      quarantinedAt.push(i);
    }

    if (this.pendingBytes + bytes > this.maxPendingBytes) {
      const errorMessage = `Rate exceeded for stream ${streamName}: ingest is over its bound of ${this.maxPendingBytes} bytes waiting for disk; retry shortly.`;
      return outcomes.fill({ errorCode: 'ProvisionedThroughputExceededException', errorMessage });
    }
    this.pendingBytes += bytes;
    try {
      const appends = byShard.map(async (records, shard) => {
        if (records.length === 0) return;
        const at = positions[shard]!;
        try {
          const first = await this.stream.append(streamName, shard, records);
          for (let k = 0; k < at.length; k++) {
            outcomes[at[k]!] = { shard, sequenceNumber: encodeSequenceNumber('log', shard, first + k), quarantined: false };
          }
        } catch (error) {
          for (const i of at) outcomes[i] = failure(error);
        }
      });
      const quarantining = (async () => {
        if (quarantined.length === 0) return;
        try {
          const first = await this.quarantine.add(streamName, quarantined);
          for (let k = 0; k < quarantinedAt.length; k++) {
            const shard = quarantined[k]!.shard;
            outcomes[quarantinedAt[k]!] = { shard, sequenceNumber: encodeSequenceNumber('quarantine', shard, first + k), quarantined: true };
          }
        } catch (error) {
          for (const i of quarantinedAt) outcomes[i] = failure(error);
        }
      })();
      await Promise.all([...appends, quarantining]);
    } finally {
      this.pendingBytes -= bytes;
    }
    const appended = outcomes.filter((outcome) => 'sequenceNumber' in outcome && !outcome.quarantined).length;
    if (appended > 0) this.counted(streamName, appended, bytes);
    return outcomes;
  }

  /** See the class comment: the key field, else ExplicitHashKey, else PartitionKey. */
  private shardOf(config: StreamConfig, record: Record<string, unknown> | null, entry: PutEntry): number {
    if (config.shards === 1) return 0;
    const value = record === null || config.partitionKey === null ? undefined : record[config.partitionKey];
    if (value !== null && value !== undefined) return shardForKey(typeof value === 'string' ? value : String(value), config.shards);
    if (entry.explicitHashKey !== null) return Math.floor((entry.explicitHashKey * config.shards) / 0x1_0000_0000);
    return shardForKey(entry.partitionKey, config.shards);
  }
}

/** `page is required`, `amount: expected a number, ...`: the validator's words, after the field they name. */
function schemaReason(field: string | undefined, message: string): string {
  if (field === undefined) return message;
  return /^(is|must) /.test(message) ? `${field} ${message}` : `${field}: ${message}`;
}

/** `{...}` with no line break and nothing around the braces. */
function isCompactObjectText(text: string): boolean {
  return text.charCodeAt(0) === 0x7b && text.charCodeAt(text.length - 1) === 0x7d && !text.includes('\n') && !text.includes('\r');
}

function failure(error: unknown): PutOutcome {
  if (error instanceof OverloadedError) {
    return { errorCode: 'ProvisionedThroughputExceededException', errorMessage: `Rate exceeded: ${error.message}` };
  }
  return { errorCode: 'InternalFailure', errorMessage: 'Internal service failure.' };
}
