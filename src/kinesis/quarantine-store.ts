import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rm, truncate, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { BLOB, blobValue, DuckDBInstance } from '@duckdb/node-api';
import type { ProjectConfig, StreamConfig } from '../config/index.js';
import { OverloadedError } from '../errors.js';
import { readJsonColumns, readJsonText } from '../lake/index.js';
import { copyEncryption, encryptionSettings, readEncryption } from '../lake/parquet-encryption.js';
import { SecretSealer, type DataKey, type Keyring } from '../security/index.js';
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
 * - Encrypted at rest with a keyring: each line is `{"qseq": N, "sealed": "<base64>"}`, the plain line sealed with
 *   AES-256-GCM under a data key per million qseqs of the stream (scope `kinesis-quarantine/<stream>/<block>`, a
 *   random nonce per line, the stream and qseq as associated data), so counting and crash recovery still work line by line. DuckDB
 *   cannot read such lines, so the SQL table reads an encrypted Parquet file written from the opened lines (held in
 *   memory, never on disk in the clear) each time the quarantine grew, under a key of its own kept in memory only;
 *   those files are deleted at open and as newer ones replace them.
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
  readonly name: string;
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

  /** With a keyring: the DuckDB that writes the encrypted files the SQL table reads, and their keys (memory only). */
  private readonly sqlFiles: { instance: DuckDBInstance | null; readonly keys: Map<string, DataKey>; sequence: number } = {
    instance: null,
    keys: new Map(),
    sequence: 0,
  };

  private constructor(
    private readonly streams: ReadonlyMap<string, StreamQuarantine>,
    private readonly keyring: Keyring | null,
    private readonly dir: string,
  ) {}

  /** Opens the store under `dir` (`<data>/lake/_kinesis_quarantine`), cutting a partial last line left by a crash. */
  static async open(dir: string, config: ProjectConfig, keyring: Keyring | null = null): Promise<KinesisQuarantine> {
    const streams = new Map<string, StreamQuarantine>();
    // The SQL files of a previous process: their keys died with it.
    await rm(join(dir, SQL_FILES), { recursive: true, force: true });
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
        name: stream.name,
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
    return new KinesisQuarantine(streams, keyring, dir);
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
    const lines = records.map((record, i) => this.seal(target, first + i, quarantineLine(first + i, record, now)));
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

  /** The line as stored: itself without a keyring, else sealed under the key of its block of {@link SEAL_BLOCK} qseqs. */
  private seal(target: StreamQuarantine, qseq: number, line: string): string {
    if (this.keyring === null) return line;
    const sealed = this.sealer(target, qseq).seal(line.slice(0, -1), `${target.name}/${qseq}`);
    return `${JSON.stringify({ qseq, sealed })}\n`;
  }

  /** The sealer of a qseq's block: AES-256-GCM under the block's data key (see SecretSealer). */
  private sealer(target: StreamQuarantine, qseq: number): SecretSealer {
    return new SecretSealer(this.keyring!.keyFor(sealScope(target.name, qseq)).key);
  }

  /** The plain NDJSON of a segment's lines (each opened when sealed); a line that does not open fails the read. */
  private async openSegment(target: StreamQuarantine, path: string): Promise<Buffer> {
    const text = await readFile(path, 'utf8');
    if (this.keyring === null) return Buffer.from(text);
    const out: string[] = [];
    const lines = text.split('\n');
    // The last line is complete only when the text ends with a newline: one being appended is left for later.
    lines.pop();
    for (const line of lines) {
      const { qseq, sealed } = JSON.parse(line) as { qseq: number; sealed: string };
      const opened = this.sealer(target, qseq).open(sealed, `${target.name}/${qseq}`);
      if (opened === null) throw new Error(`${path}: the quarantined record ${qseq} does not open under its key (tampered with?)`);
      out.push(opened);
    }
    return Buffer.from(out.join('\n') + '\n');
  }

  /**
   * With a keyring, the SQL over a stream's records: an encrypted Parquet file written from the opened segments
   * through memory, under a fresh key kept in memory, named in `keys` for the SQL engine. The file before it is kept
   * (a query may still read it), older ones go.
   */
  private async encryptedSql(target: StreamQuarantine, segments: readonly string[]): Promise<string> {
    const files = this.sqlFiles;
    files.instance ??= await DuckDBInstance.create(':memory:', { threads: '1', ...encryptionSettings(this.keyring) });
    const connection = await files.instance.connect();
    try {
      const key: DataKey = { id: `k_${randomBytes(16).toString('hex')}`, key: randomBytes(32) };
      await connection.run(`PRAGMA add_parquet_key(${sqlString(key.id)}, ${sqlString(key.key.toString('base64'))})`);
      const dir = join(this.dir, SQL_FILES, target.name);
      await mkdir(dir, { recursive: true });
      const path = join(dir, `${++files.sequence}.parquet`);
      const text = Buffer.concat(await Promise.all(segments.map((segment) => this.openSegment(target, segment))));
      const lines = readJsonText([], LINE_TYPES);
      const prepared = await connection.prepare(`COPY (${kinesisQuarantineSql(target.config, lines)}) TO ${sqlString(path)} (FORMAT parquet${copyEncryption(key)})`);
      prepared.bind([blobValue(new Uint8Array(text.buffer, text.byteOffset, text.length))], [BLOB]);
      await prepared.run();
      files.keys.set(key.id, key);
      for (const old of (await readdir(dir)).filter((name) => Number.parseInt(name, 10) < files.sequence - 1)) {
        await rm(join(dir, old), { force: true });
      }
      return `SELECT * FROM read_parquet(${sqlString(path)}${readEncryption(key.id)})`;
    } finally {
      connection.closeSync();
    }
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
      const segments = [...target.segments];
      const kinesis = async () =>
        this.keyring === null ? kinesisQuarantineSql(target.config, readSegmentsSql(segments)) : await this.encryptedSql(target, segments);
      const table: DerivedTable = {
        name,
        state: `${base?.state ?? 'no-transform'}+kinesis/${target.segments.length}/${count}`,
        sql: async () => (base === null ? await kinesis() : `SELECT * FROM (${await base.sql()}) AS ruled UNION ALL BY NAME ${await kinesis()}`),
        ...(this.keyring === null ? {} : { keys: { keyById: (id: string) => this.sqlFiles.keys.get(id) ?? base?.keys?.keyById(id) ?? missingKey(id) } }),
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
    this.sqlFiles.instance?.closeSync();
    this.sqlFiles.instance = null;
  }
}

/** The folder, under the store's, of the encrypted files the SQL tables read. */
const SQL_FILES = '_sql';

/** Qseqs per data key of sealed lines: a key covers a bounded number of lines. */
const SEAL_BLOCK = 1_000_000;

const sealScope = (stream: string, qseq: number) => `kinesis-quarantine/${stream}/${Math.floor((qseq - 1) / SEAL_BLOCK)}`;

function missingKey(id: string): never {
  throw new Error(`no data key ${id} for the Kinesis quarantine`);
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

/** The columns of a line, typed: read from segment files by `read_json`, from memory by `json_transform`. */
const LINE_TYPES = {
  qseq: 'BIGINT',
  shard: 'INTEGER',
  arrived_ms: 'BIGINT',
  partition_key: 'VARCHAR',
  reason: 'VARCHAR',
  data: 'VARCHAR',
  data_base64: 'VARCHAR',
};

/** The lines of plain segments, typed. */
function readSegmentsSql(segments: readonly string[]): string {
  // ignore_errors: a line being appended while a query reads the segment may be seen half-written; DuckDB gives
  // such a line as a row of NULLs, which the WHERE of kinesisQuarantineSql leaves out (every written line has a qseq).
  return `SELECT * FROM read_json([${segments.map(sqlString).join(', ')}], format = 'newline_delimited', columns = ${readJsonColumns([], LINE_TYPES)}, ignore_errors = true)`;
}

/** The store's records of one stream as SQL over its typed `lines`: the schema's fields where they parse, then what Kinesis sent. */
function kinesisQuarantineSql(stream: StreamConfig, lines: string): string {
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
    `epoch_ms(arrived_ms) AS __kinesis_arrived_at FROM (${lines}) AS lines WHERE qseq IS NOT NULL`
  );
}
