import { mkdir, open, readdir, readFile, truncate, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { ProjectConfig, StreamConfig } from '../config/index.js';
import { OverloadedError } from '../errors.js';
import type { DerivedTable } from '../sql/index.js';
import { quarantineTableName } from '../transform/index.js';
import { DUCKDB_TYPES, quoteIdent, sqlString } from '../util/duckdb.js';

/**
 * The quarantine of records the Kinesis API accepted but the stream's schema refuses.
 *
 * Why it exists: a Kinesis producer retries a record PutRecords fails until it succeeds, so refusing an invalid
 * record (as HTTP ingest does, per record) would make the producer retry it forever. The Kinesis API therefore
 * accepts it and keeps it here: durable before the answer, counted, queryable and never in the raw table (whose
 * typed columns could not hold it anyway: `"amount": "abc"` is no double).
 *
 * Design, the smallest that keeps those promises without touching the log, delivery or the lake's managed folders:
 * - Per stream, append-only NDJSON segments under the lake, `lake/_kinesis_quarantine/<stream>/<first qseq>.ndjson`
 *   (20 digits), rolled at {@link SEGMENT_BYTES}. `qseq` numbers the stream's quarantined records from 1; it is the
 *   seq part of their Kinesis sequence numbers (kind 2, see sequence-numbers.ts). The lake's recovery manages only
 *   `raw/`, `imported/` and `views/`, and the folder is under the SQL engine's allowed directory (as `_audit` is).
 * - One line per record: `qseq`, the `shard` its PartitionKey maps to, `arrived_ms`, `partition_key`, `reason`
 *   (what validation said), `data` (the record's text when it is UTF-8) and `data_base64` (its exact bytes).
 * - Appends are group-committed: requests that arrive during a write and fdatasync share the next one; an add
 *   resolves once its lines are synced. A failed write stops the store (its segment may end in a partial line)
 *   until a restart, whose open cuts any partial last line: an unacknowledged record may be lost, never half-kept.
 * - `<stream>__quarantine` (src/transform: the transform's rules over the raw table, for streams with a transform)
 *   gets these records by UNION ALL BY NAME, through {@link withQuarantineTables}; a stream without a transform gets
 *   a `<stream>__quarantine` table of these records alone once it has one. Each record's fields appear typed when
 *   they parse as their schema type (NULL otherwise), with `__shard`, `__quarantine_reason`, `__kinesis_data`,
 *   `__kinesis_partition_key` and `__kinesis_arrived_at`; `__seq` is NULL (the record is in no shard's log).
 * - Replay: a record here becomes valid only under a new schema, which takes a restart; re-sending `__kinesis_data`
 *   (through either API) after the fix puts it in the log, and `__kinesis_arrived_at` tells which were handled.
 */

/** A segment rolls past this size, so that no file grows without bound. */
export const SEGMENT_BYTES = 64 * 1024 * 1024;
/** Bytes of lines waiting for their write and sync, across streams; past it an add is refused as overload. */
export const MAX_PENDING_BYTES = 32 * 1024 * 1024;

const SEGMENT_NAME = /^(\d{20})\.ndjson$/;

/** One record to quarantine. */
export interface QuarantinedRecord {
  readonly shard: number;
  readonly partitionKey: string;
  readonly reason: string;
  readonly data: Buffer;
}

interface PendingAppend {
  readonly firstQseq: number;
  readonly text: string;
  readonly bytes: number;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

interface StreamQuarantine {
  readonly config: StreamConfig;
  readonly dir: string;
  /** Segment paths in qseq order. */
  readonly segments: string[];
  /** The open tail segment and its size; null until the first append of this process. */
  handle: FileHandle | null;
  size: number;
  /** The qseq the next record gets. */
  nextQseq: number;
  queue: PendingAppend[];
  /** Whether a drain runs: set and cleared synchronously around its loop, so no append is left unwritten. */
  writing: boolean;
  /** The last drain started, for close to wait on. */
  drained: Promise<void>;
}

export class KinesisQuarantine {
  private pendingBytes = 0;
  /** The error that stopped the store, if one did. */
  private failed: unknown = null;

  private constructor(private readonly streams: ReadonlyMap<string, StreamQuarantine>) {}

  /** Opens the store under `dir` (`<data>/lake/_kinesis_quarantine`), cutting a partial last line left by a crash. */
  static async open(dir: string, config: ProjectConfig): Promise<KinesisQuarantine> {
    const streams = new Map<string, StreamQuarantine>();
    for (const stream of config.streams.values()) {
      const streamDir = join(dir, stream.name);
      await mkdir(streamDir, { recursive: true });
      const names = (await readdir(streamDir)).filter((name) => SEGMENT_NAME.test(name)).sort();
      let nextQseq = 1;
      let size = 0;
      const last = names.at(-1);
      if (last !== undefined) {
        const path = join(streamDir, last);
        const bytes = await readFile(path);
        const end = bytes.lastIndexOf(0x0a) + 1;
        if (end < bytes.length) await truncate(path, end);
        let lines = 0;
        for (let at = bytes.indexOf(0x0a); at !== -1 && at < end; at = bytes.indexOf(0x0a, at + 1)) lines++;
        nextQseq = Number(SEGMENT_NAME.exec(last)![1]) + lines;
        size = end;
      }
      streams.set(stream.name, {
        config: stream,
        dir: streamDir,
        segments: names.map((name) => join(streamDir, name)),
        handle: null,
        size,
        nextQseq,
        queue: [],
        writing: false,
        drained: Promise.resolve(),
      });
    }
    return new KinesisQuarantine(streams);
  }

  /** Records of the stream kept here, since its first. */
  count(stream: string): number {
    return (this.streams.get(stream)?.nextQseq ?? 1) - 1;
  }

  /**
   * Appends records and resolves, with the qseq of the first (the others follow), once all are durable. Throws
   * {@link OverloadedError} past {@link MAX_PENDING_BYTES} waiting, and the store's error once a write failed.
   */
  add(stream: string, records: readonly QuarantinedRecord[], now = Date.now()): Promise<number> {
    const target = this.streams.get(stream);
    if (target === undefined) throw new Error(`no quarantine for stream "${stream}"`);
    if (this.failed !== null) throw this.failed;
    const first = target.nextQseq;
    const lines = records.map((record, i) => quarantineLine(first + i, record, now));
    const text = lines.join('');
    const bytes = Buffer.byteLength(text);
    if (this.pendingBytes + bytes > MAX_PENDING_BYTES) {
      throw new OverloadedError(`the Kinesis quarantine of "${stream}" has ${this.pendingBytes} bytes waiting for disk; retry shortly`);
    }
    target.nextQseq += records.length;
    this.pendingBytes += bytes;
    return new Promise<number>((resolve, reject) => {
      target.queue.push({ firstQseq: first, text, bytes, resolve: () => resolve(first), reject });
      if (!target.writing) target.drained = this.drain(target);
    });
  }

  /** Writes and syncs what is queued, as one group, until the queue is empty. */
  private async drain(target: StreamQuarantine): Promise<void> {
    target.writing = true;
    try {
      while (target.queue.length > 0) {
        const group = target.queue;
        target.queue = [];
        const bytes = group.reduce((sum, append) => sum + append.bytes, 0);
        try {
          if (this.failed !== null) throw this.failed;
          const handle = await this.tailFor(target, bytes, group[0]!.firstQseq);
          await handle.write(group.map((append) => append.text).join(''));
          await handle.datasync();
          target.size += bytes;
          for (const append of group) append.resolve();
        } catch (error) {
          this.failed ??= error;
          for (const append of group) append.reject(error);
        } finally {
          this.pendingBytes -= bytes;
        }
      }
    } finally {
      target.writing = false;
    }
  }

  /** The segment to append `bytes` to: the current one, or a new one named by its first qseq when it is full. */
  private async tailFor(target: StreamQuarantine, bytes: number, firstQseq: number): Promise<FileHandle> {
    if (target.handle !== null && (target.size === 0 || target.size + bytes <= SEGMENT_BYTES)) return target.handle;
    if (target.handle === null && target.segments.length > 0 && target.size + bytes <= SEGMENT_BYTES) {
      target.handle = await open(target.segments.at(-1)!, 'a');
      return target.handle;
    }
    await target.handle?.close();
    const path = join(target.dir, `${String(firstQseq).padStart(20, '0')}.ndjson`);
    target.handle = await open(path, 'a');
    target.size = 0;
    // The new name must survive a power cut along with the lines synced into it.
    const dir = await open(target.dir, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
    target.segments.push(path);
    return target.handle;
  }

  /**
   * The SQL engine's derived tables with this store's records in `<stream>__quarantine`: unioned into the
   * transform's table of that name, or as that table when the stream has no transform. A stream with no record
   * here keeps its tables as they are. The state changes with every record, so the engine rebuilds the view.
   */
  withQuarantineTables(tables: readonly DerivedTable[]): DerivedTable[] {
    const out = [...tables];
    for (const [stream, target] of this.streams) {
      const count = target.nextQseq - 1;
      if (count === 0 || target.segments.length === 0) continue;
      const name = quarantineTableName(stream);
      const at = out.findIndex((table) => table.name === name);
      const base = at === -1 ? null : out[at]!;
      const kinesis = kinesisQuarantineSql(target.config, [...target.segments]);
      const table: DerivedTable = {
        name,
        state: `${base?.state ?? 'no-transform'}+kinesis/${target.segments.length}/${count}`,
        sql: async () => (base === null ? kinesis : `SELECT * FROM (${await base.sql()}) AS ruled UNION ALL BY NAME ${kinesis}`),
      };
      if (at === -1) out.push(table);
      else out[at] = table;
    }
    return out;
  }

  async close(): Promise<void> {
    for (const target of this.streams.values()) {
      await target.drained;
      await target.handle?.close();
      target.handle = null;
    }
  }
}

/** One NDJSON line of the store. */
function quarantineLine(qseq: number, record: QuarantinedRecord, now: number): string {
  const text = record.data.toString('utf8');
  const isUtf8 = Buffer.byteLength(text) === record.data.length && !text.includes('\uFFFD');
  return (
    JSON.stringify({
      qseq,
      shard: record.shard,
      arrived_ms: now,
      partition_key: record.partitionKey,
      reason: record.reason,
      data: isUtf8 ? text : null,
      data_base64: record.data.toString('base64'),
    }) + '\n'
  );
}

const LINE_COLUMNS =
  "{qseq: 'BIGINT', shard: 'INTEGER', arrived_ms: 'BIGINT', partition_key: 'VARCHAR', reason: 'VARCHAR', data: 'VARCHAR', data_base64: 'VARCHAR'}";

/** The store's records of one stream as SQL: the schema's fields where they parse, then what Kinesis sent. */
function kinesisQuarantineSql(stream: StreamConfig, segments: readonly string[]): string {
  const fields = stream.fields.map((field) => {
    const path = sqlString(`$."${field.name}"`);
    const value =
      field.type === 'json' ? `json_extract(data, ${path})` : `TRY_CAST(json_extract_string(data, ${path}) AS ${DUCKDB_TYPES[field.type]})`;
    // json_valid first: data that is no JSON at all would make json_extract raise instead of answering NULL.
    return `CASE WHEN json_valid(data) THEN ${value} END AS ${quoteIdent(field.name)}`;
  });
  return (
    `SELECT ${fields.join(', ')}, shard AS __shard, CAST(NULL AS BIGINT) AS __seq, reason AS __quarantine_reason, ` +
    `data AS __kinesis_data, data_base64 AS __kinesis_data_base64, partition_key AS __kinesis_partition_key, ` +
    `epoch_ms(arrived_ms) AS __kinesis_arrived_at ` +
    // ignore_errors: a line being appended while a query reads the segment may be seen half-written; DuckDB gives
    // such a line as a row of NULLs, which the WHERE leaves out (every written line has a qseq).
    `FROM read_json([${segments.map(sqlString).join(', ')}], format = 'newline_delimited', columns = ${LINE_COLUMNS}, ignore_errors = true) ` +
    'WHERE qseq IS NOT NULL'
  );
}
