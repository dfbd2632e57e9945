import type { ProjectConfig, StreamConfig } from '../config/index.js';
import { ForbiddenError, type AccessContext, type Action, type Principal, type Security } from '../security/index.js';
import { asSeq, shardHashRange, type Stream } from '../stream/index.js';
import { ACCOUNT_ID, KinesisError, streamNotFound } from './errors.js';
import type { KinesisIngest, PutEntry } from './kinesis-ingest.js';
import { decodeSequenceNumber, encodeSequenceNumber, parseShardId, shardIdOf } from './sequence-numbers.js';
import type { ShardIterators } from './shard-iterators.js';

/** AWS's limits on PutRecords, kept so that a producer tuned against Kinesis behaves the same here. */
export const MAX_RECORDS_PER_PUT = 500;
export const MAX_RECORD_DATA_BYTES = 1024 * 1024;
export const MAX_PUT_REQUEST_BYTES = 5 * 1024 * 1024;
const MAX_PARTITION_KEY_LENGTH = 256;
/** GetRecords answers at most this many records, and stops once their data passes {@link MAX_GET_BYTES}. */
const MAX_GET_RECORDS = 10_000;
const MAX_GET_BYTES = 10 * 1024 * 1024;

/** Operations that change streams: Strata's streams are declared in the project config, so these are refused. */
const MUTATING_OPERATIONS = new Set([
  'CreateStream',
  'DeleteStream',
  'UpdateShardCount',
  'MergeShards',
  'SplitShard',
  'IncreaseStreamRetentionPeriod',
  'DecreaseStreamRetentionPeriod',
  'StartStreamEncryption',
  'StopStreamEncryption',
  'UpdateStreamMode',
  'EnableEnhancedMonitoring',
  'DisableEnhancedMonitoring',
  'AddTagsToStream',
  'RemoveTagsFromStream',
  'RegisterStreamConsumer',
  'DeregisterStreamConsumer',
  'PutResourcePolicy',
  'DeleteResourcePolicy',
]);

/** Who calls, for authorization and the audit log, and the region their signature named (for ARNs). */
export interface KinesisCaller {
  readonly principal: Principal;
  readonly context: AccessContext;
  readonly region: string;
}

/** What {@link KinesisApi.call} answers: the JSON body, and for puts the stream and record count (for metrics). */
export interface KinesisAnswer {
  readonly body: unknown;
  readonly ingested?: { readonly stream: string };
}

type Input = Readonly<Record<string, unknown>>;

/**
 * The Kinesis Data Streams operations over Strata's streams: no HTTP here (see kinesis-routes.ts), so it can be
 * driven from a test. Every operation authorizes its caller against the token's policies first (`ingest` on
 * `stream:NAME` for puts, `read` on `stream:NAME` for the rest; a denial is audited) and only then looks the stream
 * up, so an answer never tells a caller without access which streams exist.
 */
export class KinesisApi {
  private readonly createdAt = new Map<string, number>();

  constructor(
    private readonly config: ProjectConfig,
    private readonly stream: Stream,
    private readonly security: Security,
    private readonly ingest: KinesisIngest,
    private readonly iterators: ShardIterators,
    private readonly now: () => number = Date.now,
  ) {}

  /** Notes when each stream's table was created, for StreamCreationTimestamp. */
  setCreationTimes(times: ReadonlyMap<string, number>): void {
    for (const [stream, at] of times) this.createdAt.set(stream, at);
  }

  async call(operation: string, input: Input, caller: KinesisCaller): Promise<KinesisAnswer> {
    switch (operation) {
      case 'ListStreams':
        return { body: this.listStreams(input, caller) };
      case 'DescribeStream':
        return { body: this.describeStream(input, caller) };
      case 'DescribeStreamSummary':
        return { body: this.describeStreamSummary(input, caller) };
      case 'ListShards':
        return { body: this.listShards(input, caller) };
      case 'PutRecord':
        return this.putRecord(input, caller);
      case 'PutRecords':
        return this.putRecords(input, caller);
      case 'GetShardIterator':
        return { body: await this.getShardIterator(input, caller) };
      case 'GetRecords':
        return { body: await this.getRecords(input, caller) };
      default:
        if (MUTATING_OPERATIONS.has(operation)) {
          const name = typeof input.StreamName === 'string' ? input.StreamName : '*';
          throw new KinesisError(
            'AccessDeniedException',
            `User: strata token "${caller.principal.name}" is not authorized to perform: kinesis:${operation} on resource: ${this.arn(name, caller)}: Strata's streams are declared in its project config (strata.config), not created or changed over the Kinesis API.`,
          );
        }
        throw new KinesisError('UnknownOperationException', `Strata does not implement the Kinesis operation ${JSON.stringify(operation.slice(0, 100))}.`);
    }
  }

  private listStreams(input: Input, caller: KinesisCaller) {
    const limit = optionalInteger(input, 'Limit', 1, 10_000) ?? 100;
    const after = optionalString(input, 'ExclusiveStartStreamName') ?? decodeToken(optionalString(input, 'NextToken'));
    const readable = [...this.config.streams.keys()]
      .filter((name) => this.security.allows(caller.principal, 'read', `stream:${name}`))
      .sort()
      .filter((name) => after === null || name > after);
    const page = readable.slice(0, limit);
    const more = readable.length > page.length;
    return {
      StreamNames: page,
      HasMoreStreams: more,
      ...(more ? { NextToken: encodeToken(page.at(-1)!) } : {}),
      StreamSummaries: page.map((name) => ({
        StreamName: name,
        StreamARN: this.arn(name, caller),
        StreamStatus: 'ACTIVE',
        StreamModeDetails: { StreamMode: 'PROVISIONED' },
        StreamCreationTimestamp: this.creationTime(name),
      })),
    };
  }

  private describeStream(input: Input, caller: KinesisCaller) {
    const stream = this.authorizedStream(input, 'read', caller);
    const limit = optionalInteger(input, 'Limit', 1, 10_000) ?? 100;
    const after = optionalString(input, 'ExclusiveStartShardId');
    const from = after === null ? 0 : (parseShardId(after, stream.shards) ?? -1) + 1;
    const shards = this.shardDescriptions(stream).slice(from, from + limit);
    return {
      StreamDescription: {
        ...this.summary(stream, caller),
        Shards: shards,
        HasMoreShards: from + shards.length < stream.shards,
      },
    };
  }

  private describeStreamSummary(input: Input, caller: KinesisCaller) {
    const stream = this.authorizedStream(input, 'read', caller);
    return { StreamDescriptionSummary: { ...this.summary(stream, caller), OpenShardCount: stream.shards, ConsumerCount: 0 } };
  }

  private listShards(input: Input, caller: KinesisCaller) {
    const token = optionalString(input, 'NextToken');
    let stream: StreamConfig;
    let from = 0;
    if (token !== null) {
      // A NextToken stands for the stream and the position, as on AWS (StreamName may not be given with it).
      const [name, next] = (decodeToken(token) ?? '').split('\n');
      stream = this.authorizedStream({ StreamName: name ?? '' }, 'read', caller);
      from = Number(next);
      if (!Number.isInteger(from)) throw new KinesisError('InvalidArgumentException', 'NextToken is not one ListShards answered.');
    } else {
      stream = this.authorizedStream(input, 'read', caller);
      const after = optionalString(input, 'ExclusiveStartShardId');
      if (after !== null) from = (parseShardId(after, stream.shards) ?? -1) + 1;
    }
    const limit = optionalInteger(input, 'MaxResults', 1, 10_000) ?? 1000;
    const shards = this.shardDescriptions(stream).slice(from, from + limit);
    const next = from + shards.length;
    return { Shards: shards, ...(next < stream.shards ? { NextToken: encodeToken(`${stream.name}\n${next}`) } : {}) };
  }

  private async putRecord(input: Input, caller: KinesisCaller): Promise<KinesisAnswer> {
    const stream = this.authorizedStream(input, 'ingest', caller);
    const entry = readPutEntry(input, 'Data', 'PartitionKey', 'ExplicitHashKey', '');
    const [outcome] = await this.ingest.put(stream.name, [entry]);
    if ('errorCode' in outcome!) {
      throw new KinesisError(outcome.errorCode === 'InternalFailure' ? 'InternalFailure' : outcome.errorCode, outcome.errorMessage);
    }
    return { body: { ShardId: shardIdOf(outcome!.shard), SequenceNumber: outcome!.sequenceNumber, EncryptionType: 'NONE' }, ingested: { stream: stream.name } };
  }

  private async putRecords(input: Input, caller: KinesisCaller): Promise<KinesisAnswer> {
    const stream = this.authorizedStream(input, 'ingest', caller);
    const records = input.Records;
    if (!Array.isArray(records)) throw validation(`Value null at 'records' failed to satisfy constraint: Member must not be null`);
    if (records.length < 1 || records.length > MAX_RECORDS_PER_PUT) {
      throw validation(`Value at 'records' failed to satisfy constraint: Member must have length ${records.length < 1 ? 'greater than or equal to 1' : `less than or equal to ${MAX_RECORDS_PER_PUT}`}`);
    }
    let total = 0;
    const entries = records.map((record: unknown, i) => {
      if (typeof record !== 'object' || record === null || Array.isArray(record)) throw serialization(`records.${i + 1} is not an object`);
      const entry = readPutEntry(record as Input, 'Data', 'PartitionKey', 'ExplicitHashKey', `records.${i + 1}.member.`);
      total += entry.data.length + Buffer.byteLength(entry.partitionKey);
      return entry;
    });
    if (total > MAX_PUT_REQUEST_BYTES) {
      throw new KinesisError('InvalidArgumentException', `Records size exceeds ${MAX_PUT_REQUEST_BYTES / 1024 / 1024} MB limit: ${total} bytes of Data and PartitionKeys.`);
    }
    const outcomes = await this.ingest.put(stream.name, entries);
    let failed = 0;
    const answers = outcomes.map((outcome) => {
      if ('errorCode' in outcome) {
        failed++;
        return { ErrorCode: outcome.errorCode, ErrorMessage: outcome.errorMessage };
      }
      return { ShardId: shardIdOf(outcome.shard), SequenceNumber: outcome.sequenceNumber };
    });
    return { body: { FailedRecordCount: failed, Records: answers, EncryptionType: 'NONE' }, ingested: { stream: stream.name } };
  }

  private async getShardIterator(input: Input, caller: KinesisCaller) {
    const stream = this.authorizedStream(input, 'read', caller);
    const shard = this.shardOf(stream, requiredString(input, 'ShardId', 'shardId'));
    const state = this.stream.shards(stream.name)[shard]!;
    const type = requiredString(input, 'ShardIteratorType', 'shardIteratorType');
    let nextSeq: number;
    switch (type) {
      case 'TRIM_HORIZON':
        nextSeq = state.firstSeq ?? state.lastSeq + 1;
        break;
      case 'LATEST':
        nextSeq = state.lastSeq + 1;
        break;
      case 'AT_SEQUENCE_NUMBER':
      case 'AFTER_SEQUENCE_NUMBER': {
        const text = requiredString(input, 'StartingSequenceNumber', 'startingSequenceNumber');
        const decoded = decodeSequenceNumber(text);
        if (decoded === null || decoded.kind !== 'log' || decoded.shard !== shard) {
          const why = decoded?.kind === 'quarantine' ? ' (it names a record kept in the quarantine, which GetRecords does not return)' : '';
          throw new KinesisError(
            'InvalidArgumentException',
            `StartingSequenceNumber ${text.slice(0, 128)} used in GetShardIterator on shard ${shardIdOf(shard)} in stream ${stream.name} under account ${ACCOUNT_ID} is invalid${why}.`,
          );
        }
        nextSeq = decoded.seq + (type === 'AFTER_SEQUENCE_NUMBER' ? 1 : 0);
        break;
      }
      case 'AT_TIMESTAMP': {
        const timestamp = input.Timestamp;
        const ms = typeof timestamp === 'number' ? timestamp * 1000 : typeof timestamp === 'string' ? Date.parse(timestamp) : NaN;
        if (!Number.isFinite(ms)) throw new KinesisError('InvalidArgumentException', 'Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP.');
        nextSeq = await this.firstSeqAtOrAfter(stream.name, shard, ms);
        break;
      }
      default:
        throw validation(`Value '${type.slice(0, 64)}' at 'shardIteratorType' failed to satisfy constraint: Member must satisfy enum value set: [AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, TRIM_HORIZON, LATEST, AT_TIMESTAMP]`);
    }
    return { ShardIterator: this.iterators.issue(stream.name, shard, nextSeq) };
  }

  /**
   * The seq of the shard's first record appended at or after `ms` (one past the last when none was): a binary
   * search over seqs, since append times increase with seq (up to clock steps, where it lands near the step).
   */
  private async firstSeqAtOrAfter(stream: string, shard: number, ms: number): Promise<number> {
    const state = this.stream.shards(stream)[shard]!;
    let low = state.firstSeq ?? state.lastSeq + 1;
    let high = state.lastSeq + 1;
    while (low < high) {
      const middle = Math.floor((low + high) / 2);
      const [record] = await this.stream.read(stream, shard, asSeq(middle), 1);
      if (record === undefined) break;
      if (record.appendedAt >= ms) high = record.seq;
      else low = record.seq + 1;
    }
    return low;
  }

  private async getRecords(input: Input, caller: KinesisCaller) {
    const position = this.iterators.read(requiredString(input, 'ShardIterator', 'shardIterator'));
    const stream = this.authorizedStream({ StreamName: position.stream }, 'read', caller);
    if (position.shard >= stream.shards) throw streamNotFound(stream.name);
    const limit = optionalInteger(input, 'Limit', 1, MAX_GET_RECORDS) ?? MAX_GET_RECORDS;
    const state = this.stream.shards(stream.name)[position.shard]!;
    // Records retention removed are gone: reading resumes at the oldest one kept, as Kinesis' TRIM_HORIZON would.
    const from = Math.max(position.nextSeq, state.firstSeq ?? position.nextSeq, 1);
    const stored = from > state.lastSeq ? [] : await this.stream.read(stream.name, position.shard, asSeq(from), limit);
    const key = stream.partitionKey;
    const records: unknown[] = [];
    let bytes = 0;
    let nextSeq = from;
    for (const record of stored) {
      if (records.length > 0 && bytes + record.data.length > MAX_GET_BYTES) break;
      bytes += record.data.length;
      nextSeq = record.seq + 1;
      records.push({
        SequenceNumber: encodeSequenceNumber('log', position.shard, record.seq),
        ApproximateArrivalTimestamp: record.appendedAt / 1000,
        Data: record.data.toString('base64'),
        PartitionKey: partitionKeyOf(record.data, key),
      });
    }
    const last = stored[records.length - 1];
    const behind = nextSeq > state.lastSeq || last === undefined ? 0 : Math.max(0, this.now() - last.appendedAt);
    return { Records: records, NextShardIterator: this.iterators.issue(stream.name, position.shard, nextSeq), MillisBehindLatest: behind };
  }

  /** The stream the input names (StreamName, or StreamARN), once the caller may do `action` on it. */
  private authorizedStream(input: Input, action: Action, caller: KinesisCaller): StreamConfig {
    const name = streamNameOf(input);
    try {
      this.security.authorize(caller.principal, action, `stream:${name}`, caller.context);
    } catch (error) {
      if (!(error instanceof ForbiddenError)) throw error;
      throw new KinesisError(
        'AccessDeniedException',
        `User: strata token "${caller.principal.name}" is not authorized to perform: ${action} on resource: ${this.arn(name, caller)} because no policy of the token allows ${action} on stream:${name}.`,
      );
    }
    const stream = this.config.streams.get(name);
    if (stream === undefined) throw streamNotFound(name);
    return stream;
  }

  private shardOf(stream: StreamConfig, shardId: string): number {
    const shard = parseShardId(shardId, stream.shards);
    if (shard === null) {
      throw new KinesisError('ResourceNotFoundException', `Shard ${shardId.slice(0, 128)} in stream ${stream.name} under account ${ACCOUNT_ID} does not exist`);
    }
    return shard;
  }

  private shardDescriptions(stream: StreamConfig) {
    return this.stream.shards(stream.name).map((state) => {
      const range = shardHashRange(state.shard, stream.shards);
      return {
        ShardId: shardIdOf(state.shard),
        // Strata hashes keys into 32 bits (src/stream/partition.ts), so ranges are of that space, not MD5's 128 bits.
        HashKeyRange: { StartingHashKey: String(range.start), EndingHashKey: String(range.end) },
        SequenceNumberRange: { StartingSequenceNumber: encodeSequenceNumber('log', state.shard, state.firstSeq ?? state.lastSeq + 1) },
      };
    });
  }

  private summary(stream: StreamConfig, caller: KinesisCaller) {
    return {
      StreamName: stream.name,
      StreamARN: this.arn(stream.name, caller),
      StreamStatus: 'ACTIVE',
      StreamModeDetails: { StreamMode: 'PROVISIONED' },
      // Records stay in the log until every published batch version covers them (architecture §4), at least a day.
      RetentionPeriodHours: 24,
      StreamCreationTimestamp: this.creationTime(stream.name),
      EnhancedMonitoring: [{ ShardLevelMetrics: [] }],
      EncryptionType: 'NONE',
    };
  }

  private creationTime(stream: string): number {
    return (this.createdAt.get(stream) ?? 0) / 1000;
  }

  private arn(stream: string, caller: KinesisCaller): string {
    return `arn:aws:kinesis:${caller.region}:${ACCOUNT_ID}:stream/${stream.slice(0, 128)}`;
  }
}

function validation(detail: string): KinesisError {
  return new KinesisError('ValidationException', `1 validation error detected: ${detail}`);
}

function serialization(detail: string): KinesisError {
  return new KinesisError('SerializationException', detail);
}

/** The stream an input names: StreamName, else the name in StreamARN (`arn:aws:kinesis:REGION:ACCOUNT:stream/NAME`). */
function streamNameOf(input: Input): string {
  const name = input.StreamName;
  if (typeof name === 'string' && name !== '') return name.slice(0, 128);
  const arn = input.StreamARN;
  if (typeof arn === 'string') {
    const match = /^arn:aws[\w-]*:kinesis:[\w-]*:\d*:stream\/([^/]{1,128})$/.exec(arn);
    if (match) return match[1]!;
    throw validation(`Value '${arn.slice(0, 128)}' at 'streamARN' failed to satisfy constraint: Member must be a stream ARN`);
  }
  throw new KinesisError('InvalidArgumentException', 'Either StreamName or StreamARN should be provided.');
}

function requiredString(input: Input, field: string, awsName: string): string {
  const value = input[field];
  if (typeof value === 'string' && value !== '') return value;
  throw validation(`Value null at '${awsName}' failed to satisfy constraint: Member must not be null`);
}

function optionalString(input: Input, field: string): string | null {
  const value = input[field];
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') throw serialization(`${field} must be a string`);
  return value;
}

function optionalInteger(input: Input, field: string, min: number, max: number): number | null {
  const value = input[field];
  if (value === undefined || value === null) return null;
  if (typeof value !== 'number' || !Number.isInteger(value)) throw serialization(`${field} must be an integer`);
  if (value < min || value > max) {
    throw validation(`Value '${value}' at '${field[0]!.toLowerCase()}${field.slice(1)}' failed to satisfy constraint: Member must have value between ${min} and ${max}`);
  }
  return value;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** One record of a put: Data (base64, at most 1 MiB decoded), PartitionKey (1 to 256 characters), ExplicitHashKey. */
function readPutEntry(input: Input, dataField: string, keyField: string, hashField: string, at: string): PutEntry {
  const data = input[dataField];
  if (typeof data !== 'string') throw validation(`Value null at '${at}data' failed to satisfy constraint: Member must not be null`);
  // Base64 grows 4/3: check the length before decoding, so an oversized record costs no buffer.
  if (Math.floor((data.length * 3) / 4) - (data.endsWith('==') ? 2 : data.endsWith('=') ? 1 : 0) > MAX_RECORD_DATA_BYTES) {
    throw validation(`Value at '${at}data' failed to satisfy constraint: Member must have length less than or equal to ${MAX_RECORD_DATA_BYTES}`);
  }
  if (!BASE64.test(data)) throw serialization(`${at}data is not valid base64`);
  const key = input[keyField];
  if (typeof key !== 'string') throw validation(`Value null at '${at}partitionKey' failed to satisfy constraint: Member must not be null`);
  if (key.length < 1 || key.length > MAX_PARTITION_KEY_LENGTH) {
    throw validation(`Value '${key.slice(0, 300)}' at '${at}partitionKey' failed to satisfy constraint: Member must have length between 1 and ${MAX_PARTITION_KEY_LENGTH}`);
  }
  const hash = input[hashField];
  let explicitHashKey: number | null = null;
  if (hash !== undefined && hash !== null) {
    const number = typeof hash === 'string' && /^\d{1,39}$/.test(hash) ? Number(hash) : NaN;
    // Strata's hash space is 32 bits (see ListShards' HashKeyRange), not MD5's 128.
    if (!(number >= 0 && number <= 0xffff_ffff)) {
      throw new KinesisError('InvalidArgumentException', `ExplicitHashKey ${String(hash).slice(0, 64)} is outside the hash key range 0..${0xffff_ffff} Strata's shards cover.`);
    }
    explicitHashKey = number;
  }
  return { data: Buffer.from(data, 'base64'), partitionKey: key, explicitHashKey };
}

/** The record's value of the stream's partition-key field, as text: the log keeps records, not Kinesis' PartitionKeys. */
function partitionKeyOf(data: Buffer, field: string | null): string {
  if (field === null) return '';
  try {
    const value = (JSON.parse(data.toString('utf8')) as Record<string, unknown>)[field];
    return value === null || value === undefined ? '' : typeof value === 'string' ? value : JSON.stringify(value);
  } catch {
    return '';
  }
}

function encodeToken(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}

function decodeToken(token: string | null): string | null {
  return token === null ? null : Buffer.from(token, 'base64url').toString('utf8');
}
