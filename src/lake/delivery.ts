import { rm, writeFile } from 'node:fs/promises';
import type { Catalog } from '../catalog/index.js';
import type { ProjectConfig, StreamConfig } from '../config/index.js';
import { asSeq, type RecordBatch, type Stream } from '../stream/index.js';
import { quoteIdent, sqlString } from '../util/duckdb.js';
import { readJsonColumns, readJsonText, type ChunkWriter } from './chunk-writer.js';
import type { ObjectStore } from './types.js';

/** The log consumer name delivery checkpoints under, so retention keeps what is not delivered yet. */
export const DELIVERY_CONSUMER = 'delivery';

/** Offset columns every raw table carries beside the stream's own: where each row came from in the log. */
export const OFFSET_COLUMNS = { __shard: 'INTEGER', __seq: 'BIGINT' } as const;

/** Records read from the log per call, so a buffer never overshoots its byte bound by much. */
const READ_BATCH = 10_000;
/** Wait before retrying a chunk whose write failed. */
const RETRY_MS = 1_000;

export interface ShardDelivery {
  readonly stream: string;
  readonly shard: number;
  /** The last seq registered in the catalog. */
  readonly deliveredSeq: number;
  /** Records read from the log and waiting to be sealed. */
  readonly buffered: number;
  /** The last failure to write a chunk, if the shard is retrying. */
  readonly lastError: string | null;
}

/** What delivery needs of the log: reading, waiting for appends, and telling retention what it is done with. */
export type DeliverySource = Pick<Stream, 'readBatch' | 'waitForAppend' | 'commitCheckpoint'>;

export interface DeliveryParts {
  readonly stream: DeliverySource;
  readonly catalog: Catalog;
  readonly store: ObjectStore;
  readonly writer: ChunkWriter;
  readonly config: ProjectConfig;
  readonly log?: (message: string) => void;
  /** Told after each chunk is registered: the shard's new delivered seq. */
  readonly onDelivered?: (stream: string, shard: number, seq: number) => void;
}

interface ShardState {
  stream: StreamConfig;
  shard: number;
  deliveredSeq: number;
  buffer: RecordBatch[];
  buffered: number;
  bufferBytes: number;
  bufferedSince: number;
  lastError: string | null;
}

/**
 * Delivery, the Firehose role: a consumer of the stream log that seals contiguous offset ranges of each shard
 * into chunks of the master dataset. A chunk is sealed at `delivery.maxRecords`, `maxBytes` or `maxSeconds`
 * after its first record, whichever comes first; its Parquet files are published, then registered in the
 * catalog together with the shard's delivered seq in one transaction.
 *
 * Crash safety: the delivered seq moves only in that transaction, so after a crash delivery resumes right
 * after the last registered chunk, and files published but not registered are removed by lake recovery.
 * Every acked record therefore lands in the lake exactly once.
 *
 * Pacing: shards that keep up write their chunks one at a time. Under steady load every shard fills its chunk
 * at about the same moment, and writing them all at once would take every core for a moment (each write is a
 * DuckDB query of its own), stalling ingest acks and the speed layer's micro-batches; one at a time, delivery
 * takes about one core. A shard that has fallen a whole chunk (`maxRecords`) or more behind the log writes
 * at once, beside the others, so that delivery catches up with all the cores there are.
 */
export class Delivery {
  private readonly shards: ShardState[] = [];
  private running = false;
  private loops: Promise<void>[] = [];
  private wake: (() => void)[] = [];
  /** The chunk writes of shards that keep up, one at a time (see the class comment). */
  private paced: Promise<unknown> = Promise.resolve();

  private readonly stream: DeliverySource;
  private readonly catalog: Catalog;
  private readonly store: ObjectStore;
  private readonly writer: ChunkWriter;
  private readonly config: ProjectConfig;
  private readonly log: (message: string) => void;
  private readonly onDelivered: (stream: string, shard: number, seq: number) => void;

  constructor(parts: DeliveryParts) {
    this.stream = parts.stream;
    this.catalog = parts.catalog;
    this.store = parts.store;
    this.writer = parts.writer;
    this.config = parts.config;
    this.log = parts.log ?? (() => {});
    this.onDelivered = parts.onDelivered ?? (() => {});
  }

  /** Reads each shard's delivered seq and starts one delivery loop per shard. */
  async start(): Promise<void> {
    for (const stream of this.config.streams.values()) {
      for (let shard = 0; shard < stream.shards; shard++) {
        this.shards.push({
          stream,
          shard,
          deliveredSeq: await this.catalog.deliveredSeq(stream.name, shard),
          buffer: [],
          buffered: 0,
          bufferBytes: 0,
          bufferedSince: 0,
          lastError: null,
        });
      }
    }
    this.running = true;
    this.loops = this.shards.map((state) => this.run(state));
  }

  status(): ShardDelivery[] {
    return this.shards.map((state) => ({
      stream: state.stream.name,
      shard: state.shard,
      deliveredSeq: state.deliveredSeq,
      buffered: state.buffered,
      lastError: state.lastError,
    }));
  }

  /** The delivered seq of one shard, 0 before anything was delivered. */
  deliveredSeq(stream: string, shard: number): number {
    return this.shards.find((state) => state.stream.name === stream && state.shard === shard)?.deliveredSeq ?? 0;
  }

  /** Stops every loop; records buffered but not sealed are delivered again after the next start. */
  async stop(): Promise<void> {
    this.running = false;
    for (const wake of this.wake) wake();
    await Promise.all(this.loops);
  }

  private async run(state: ShardState): Promise<void> {
    const { maxRecords, maxBytes, maxSeconds } = this.config.delivery;
    const name = state.stream.name;
    while (this.running) {
      const nextSeq = state.deliveredSeq + state.buffered + 1;
      const due = state.buffered > 0 ? state.bufferedSince + maxSeconds * 1000 : Infinity;
      const batch = await this.stream.readBatch(name, state.shard, asSeq(nextSeq), Math.min(READ_BATCH, maxRecords - state.buffered));
      if (batch.count > 0) {
        if (batch.firstSeq !== nextSeq) {
          throw new Error(`delivery of ${name}/${state.shard} expected seq ${nextSeq}, the log gave ${batch.firstSeq}`);
        }
        if (state.buffered === 0) state.bufferedSince = Date.now();
        state.buffer.push(batch);
        state.buffered += batch.count;
        state.bufferBytes += batch.bytes;
      }
      const full = state.buffered >= maxRecords || state.bufferBytes >= maxBytes;
      if (state.buffered > 0 && (full || Date.now() >= due)) {
        await this.seal(state);
        continue;
      }
      if (batch.count === 0) {
        const wait = Math.max(1, Math.min(due - Date.now(), 1_000));
        await this.idle(this.stream.waitForAppend(name, state.shard, asSeq(nextSeq - 1), wait));
      }
    }
  }

  /** Runs `task` after every paced task before it. */
  private oneAtATime<T>(task: () => Promise<T>): Promise<T> {
    const result = this.paced.then(task);
    this.paced = result.catch(() => undefined);
    return result;
  }

  /** Waits for `promise`, or for {@link stop}. */
  private async idle(promise: Promise<unknown>): Promise<void> {
    let wake: () => void = () => {};
    const stopped = new Promise<void>((resolve) => (wake = resolve));
    this.wake.push(wake);
    try {
      await Promise.race([promise, stopped]);
    } finally {
      this.wake = this.wake.filter((w) => w !== wake);
    }
  }

  private async seal(state: ShardState): Promise<void> {
    const firstSeq = state.deliveredSeq + 1;
    const lastSeq = state.deliveredSeq + state.buffered;
    const name = state.stream.name;
    // Staged as a file for DuckDB's read_json, unless chunks are encrypted: then the records must never touch
    // the disk in plaintext, and DuckDB reads them from memory (readJsonText), bound as one parameter.
    const staged = this.writer.encrypts ? null : this.store.stagingPath(`${name}-${state.shard}-${firstSeq}-${lastSeq}-ndjson`);
    try {
      const ndjson = withOffsets(state.buffer, state.buffered, state.bufferBytes, state.shard);
      const select = [...state.stream.fields.map((field) => quoteIdent(field.name)), '__shard', '__seq'].join(', ');
      let source: string;
      let parameters: Buffer[] = [];
      if (staged === null) {
        source = `SELECT ${select} FROM (${readJsonText(state.stream.fields, OFFSET_COLUMNS)}) AS records`;
        parameters = [ndjson];
      } else {
        await writeFile(staged, ndjson);
        const columns = readJsonColumns(state.stream.fields, OFFSET_COLUMNS);
        source = `SELECT ${select} FROM read_json(${sqlString(staged)}, format = 'newline_delimited', columns = ${columns})`;
      }
      const write = () =>
        this.writer.write({
          prefix: `raw/${name}`,
          stem: `${state.shard}-${firstSeq}-${lastSeq}`,
          eventTime: state.stream.eventTime,
          source,
          parameters,
        });
      // The log's durable seq, answered at once.
      const behind = (await this.stream.waitForAppend(name, state.shard, asSeq(lastSeq), 0)) - lastSeq >= this.config.delivery.maxRecords;
      const files = behind ? await write() : await this.oneAtATime(write);
      await this.catalog.commitDelivery(name, state.shard, firstSeq, lastSeq, files);
      state.deliveredSeq = lastSeq;
      state.buffer = [];
      state.buffered = 0;
      state.bufferBytes = 0;
      state.lastError = null;
      this.onDelivered(name, state.shard, lastSeq);
      await this.stream.commitCheckpoint(DELIVERY_CONSUMER, name, state.shard, asSeq(lastSeq));
    } catch (error) {
      state.lastError = (error as Error).message;
      this.log(`delivery of ${name}/${state.shard} seqs ${firstSeq}-${lastSeq} failed, retrying: ${state.lastError}`);
      await this.idle(new Promise((resolve) => setTimeout(resolve, RETRY_MS)));
    } finally {
      if (staged !== null) await rm(staged, { force: true });
    }
  }
}

/** Most bytes the offset columns add to one line: `{"__shard":` + 10 digits + `,"__seq":` + 16 digits + `,` + newline. */
const MAX_PREFIX_BYTES = 48;

/**
 * The records as NDJSON, each object given its offset columns first, written straight into one buffer with
 * no object or string per record (this runs for every delivered record).
 */
export function withOffsets(batches: readonly RecordBatch[], count: number, bytes: number, shard: number): Buffer {
  const out = Buffer.allocUnsafe(bytes + count * MAX_PREFIX_BYTES);
  const shardPrefix = Buffer.from(`{"__shard":${shard},"__seq":`, 'latin1');
  let at = 0;
  let expected = batches[0]?.firstSeq ?? 0;
  for (const batch of batches) {
    batch.forEach((seq, body, start, end) => {
      if (seq !== expected) throw new Error(`delivery staged seq ${seq} where ${expected} was expected`);
      expected++;
      at += shardPrefix.copy(out, at);
      at += writeDigits(out, at, seq);
      // Every stored record is a JSON object (ingest refuses anything else); an empty one has no field to follow.
      if (isEmptyObject(body, start, end)) out[at++] = 0x7d; // '}'
      else {
        out[at++] = 0x2c; // ','
        at += body.copy(out, at, start + 1, end);
      }
      out[at++] = 0x0a;
    });
  }
  return out.subarray(0, at);
}

/** Writes a non-negative integer's decimal digits at `at`; answers how many. */
function writeDigits(out: Buffer, at: number, value: number): number {
  let digits = 1;
  for (let v = value; v >= 10; v = Math.floor(v / 10)) digits++;
  for (let i = digits - 1, v = value; i >= 0; i--, v = Math.floor(v / 10)) out[at + i] = 0x30 + (v % 10);
  return digits;
}

function isEmptyObject(data: Buffer, start: number, end: number): boolean {
  for (let i = start + 1; i < end; i++) {
    const c = data[i];
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return c === 0x7d; // '}'
  }
  return false;
}
