import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, extname, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { diffSchemas, type Catalog, type NewChunkFile } from '../../catalog/index.js';
import { NAME_PATTERN, parseFieldSpecs, type FieldSpec, type ProjectConfig } from '../../config/index.js';
import { DuplicateImportError, MalformedInputError, SchemaError, StrataError } from '../../errors.js';
import type { ChunkWriter, ObjectStore } from '../../lake/index.js';
import { csvFormat } from './csv.js';
import type { FileContext, ImportFormat, ImportFormatName } from './format.js';
import { ndjsonFormat } from './ndjson.js';
import { parquetFormat } from './parquet.js';
import { mergeInferred, withEventTime, type ImportTarget } from './target.js';

/** What bulk import needs of a running Strata (a {@link Strata} is one). */
export interface ImportParts {
  readonly config: ProjectConfig;
  readonly catalog: Catalog;
  readonly store: ObjectStore;
  readonly writer: ChunkWriter;
}

export interface ImportOptions {
  /** A configured stream (the files are its history) or the name of an imported table. */
  readonly table: string;
  /** Paths of the files, read one at a time, in order. */
  readonly files: readonly string[];
  /** The format of every file; by default each file's extension tells (`.ndjson`/`.jsonl`/`.json`, `.csv`, `.parquet`). */
  readonly format?: ImportFormatName;
  /**
   * The columns of an imported table, as in a config: `{"id": "string", "amount": "double?"}`. Without it the
   * schema is inferred from each file. Not allowed for a stream, whose schema is the config's.
   */
  readonly schema?: Record<string, string>;
  /** The timestamp column that partitions an imported table's rows by day; without it, rows go to `dt=__unknown__`. */
  readonly eventTime?: string;
  /** Import a file even if the same content was imported into the table before. */
  readonly allowDuplicate?: boolean;
  readonly onProgress?: (progress: ImportProgress) => void;
  /** Stops the import between lines or files; the file in progress registers nothing. */
  readonly signal?: AbortSignal;
}

/** Where an import stands. Byte counts weigh each file's phases (hashing, reading, writing) by its size. */
export interface ImportProgress {
  readonly bytesDone: number;
  readonly bytesTotal: number;
  /** Rows registered so far. */
  readonly rows: number;
  /** The file being imported. */
  readonly path: string;
}

/** The fate of one file: imported whole, or not at all. */
export interface ImportFileResult {
  readonly path: string;
  readonly state: 'succeeded' | 'failed';
  readonly rows: number;
  /** The size of the source file. */
  readonly bytes: number;
  /** sha256 of the file's bytes, once read. */
  readonly contentHash: string | null;
  /** The lake objects registered for it, one per event-time partition. */
  readonly keys: readonly string[];
  /** The table's schema version its files were registered under. */
  readonly schemaVersion: number | null;
  readonly error: { readonly code: string; readonly message: string } | null;
}

export interface ImportResult {
  readonly table: string;
  readonly files: readonly ImportFileResult[];
  readonly rows: number;
  readonly bytes: number;
  readonly seconds: number;
}

/** An import's options checked and resolved: what every file of it shares. */
export interface ImportPlan {
  readonly table: string;
  readonly files: readonly { readonly path: string; readonly format: ImportFormatName; readonly bytes: number }[];
  /** The stream, when the table is one. */
  readonly stream: { readonly fields: readonly FieldSpec[]; readonly eventTime: string | null } | null;
  /** The declared schema of an imported table, or null to infer it. */
  readonly schema: readonly FieldSpec[] | null;
  readonly eventTime: string | null;
  readonly allowDuplicate: boolean;
}

const FORMATS: Record<ImportFormatName, ImportFormat> = { ndjson: ndjsonFormat, csv: csvFormat, parquet: parquetFormat };

const FORMAT_BY_EXTENSION: Record<string, ImportFormatName> = {
  '.ndjson': 'ndjson',
  '.jsonl': 'ndjson',
  '.json': 'ndjson',
  '.csv': 'csv',
  '.parquet': 'parquet',
};

/** Format names accepted by `--format`, aliases included. */
export const FORMAT_NAMES: Record<string, ImportFormatName> = { ndjson: 'ndjson', jsonl: 'ndjson', json: 'ndjson', csv: 'csv', parquet: 'parquet' };

/** Weights of a file's phases in progress figures: hashing it, then reading and writing it. */
const HASH_SHARE = 0.2;

/**
 * Checks an import's options before any file is read: the table name, each file (readable, a format known),
 * the schema and event time against the stream or the table as the catalog has it. Throws the error a
 * client must fix: {@link MalformedInputError}, {@link ConfigError} for a bad schema, {@link SchemaError}
 * for an incompatible one.
 */
export async function planImport(parts: ImportParts, options: ImportOptions): Promise<ImportPlan> {
  const { table } = options;
  if (!NAME_PATTERN.test(table)) {
    throw new MalformedInputError(`table name ${JSON.stringify(table)}: a table name starts with a letter or _ and holds only letters, digits and _ (at most 63)`);
  }
  if (options.files.length === 0) throw new MalformedInputError('no files to import');
  if (options.format !== undefined && !Object.hasOwn(FORMATS, options.format)) {
    throw new MalformedInputError(`unknown format ${JSON.stringify(options.format)}; expected ndjson, csv or parquet`);
  }
  const files = [];
  for (const given of options.files) {
    const path = resolve(given);
    const format = options.format ?? FORMAT_BY_EXTENSION[extname(path).toLowerCase()];
    if (format === undefined) {
      throw new MalformedInputError(`cannot tell the format of ${given} from its extension (.ndjson, .jsonl, .json, .csv, .parquet); give the format`);
    }
    let info;
    try {
      info = await stat(path);
    } catch (error) {
      throw new MalformedInputError(`cannot read ${given}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}`);
    }
    if (!info.isFile()) throw new MalformedInputError(`cannot import ${given}: not a regular file`);
    files.push({ path, format, bytes: info.size });
  }

  const stream = parts.config.streams.get(table);
  const eventTime = options.eventTime ?? null;
  if (stream) {
    if (options.schema !== undefined) {
      throw new MalformedInputError(`"${table}" is a stream: its files are checked against the stream's schema in the config; a schema applies only to imported tables`);
    }
    if (eventTime !== null && eventTime !== stream.eventTime) {
      throw new MalformedInputError(`"${table}" is a stream partitioned by its event time ${stream.eventTime === null ? '(none)' : `"${stream.eventTime}"`}; another event time cannot be chosen`);
    }
    return { table, files, stream: { fields: stream.fields, eventTime: stream.eventTime }, schema: null, eventTime: stream.eventTime, allowDuplicate: options.allowDuplicate ?? false };
  }

  const existing = await parts.catalog.table(table);
  if (existing && existing.kind !== 'imported') {
    throw new SchemaError(`table "${table}" holds the delivered records of a stream that is not in the config; import into it is refused`);
  }
  let schema: FieldSpec[] | null = null;
  if (options.schema !== undefined) {
    schema = withEventTime(table, parseFieldSpecs(options.schema, 'schema'), eventTime, false);
    if (existing) diffSchemas(table, existing.columns, schema);
  }
  return { table, files, stream: null, schema, eventTime, allowDuplicate: options.allowDuplicate ?? false };
}

/**
 * Bulk import, the Glue/DMS batch-ingestion role: reads NDJSON, CSV and Parquet files into a table of the
 * master dataset, one file at a time. Each file is all or nothing: it is validated whole, written as chunks
 * of the same layout as delivered ones (zstd Parquet per event-time day, under the table's prefix) and
 * registered with one catalog transaction, or, on any error, nothing of it is registered and whatever was
 * published is removed again. A file whose bytes (sha256) were imported into the table before is refused
 * with {@link DuplicateImportError} unless `allowDuplicate`.
 *
 * Options that are wrong for every file throw (see {@link planImport}); a file that fails is reported in
 * the result and the next file is imported.
 */
export async function importFiles(parts: ImportParts, options: ImportOptions): Promise<ImportResult> {
  const plan = await planImport(parts, options);
  return runImport(parts, plan, options);
}

/** Runs a checked plan; see {@link importFiles}. */
export async function runImport(
  parts: ImportParts,
  plan: ImportPlan,
  options: Pick<ImportOptions, 'onProgress' | 'signal'> = {},
): Promise<ImportResult> {
  const started = performance.now();
  const bytesTotal = plan.files.reduce((sum, file) => sum + file.bytes, 0);
  const instance = await DuckDBInstance.create(':memory:', { threads: '1' });
  const db = await instance.connect();
  const results: ImportFileResult[] = [];
  let bytesBefore = 0;
  let rows = 0;
  try {
    await db.run(`SET TimeZone = 'UTC'`);
    for (const file of plan.files) {
      if (options.signal?.aborted) throw options.signal.reason;
      const report = (fileBytesDone: number) =>
        options.onProgress?.({ bytesDone: bytesBefore + Math.min(fileBytesDone, file.bytes), bytesTotal, rows, path: file.path });
      const result = await importOne(parts, plan, file, db, options.signal, report);
      results.push(result);
      rows += result.rows;
      report(file.bytes);
      bytesBefore += file.bytes;
    }
  } finally {
    db.closeSync();
    instance.closeSync();
  }
  return {
    table: plan.table,
    files: results,
    rows,
    bytes: bytesTotal,
    seconds: (performance.now() - started) / 1000,
  };
}

async function importOne(
  parts: ImportParts,
  plan: ImportPlan,
  file: ImportPlan['files'][number],
  db: DuckDBConnection,
  signal: AbortSignal | undefined,
  report: (bytesDone: number) => void,
): Promise<ImportFileResult> {
  const label = basename(file.path);
  let contentHash: string | null = null;
  try {
    contentHash = await hashFile(file.path, signal, (done) => report(done * HASH_SHARE));
    const prior = await parts.catalog.findImport(plan.table, contentHash);
    if (prior && !plan.allowDuplicate) {
      throw new DuplicateImportError(
        `${label}: the same content was imported into "${plan.table}" at ${prior.importedAt} (from ${prior.source}); ` +
          'importing it again would count its rows twice (--allow-duplicate, or allowDuplicate in the API, imports it anyway)',
      );
    }
    let read = 0;
    const context: FileContext = {
      path: file.path,
      label,
      db,
      store: parts.store,
      signal,
      onBytes: (bytes) => report(file.bytes * HASH_SHARE + (read += bytes) * (1 - HASH_SHARE) * 0.6),
      stageInMemory: parts.writer.encrypts,
    };
    const format = FORMATS[file.format];
    const target = await resolveTarget(parts, plan, format, context);
    const { files, schemaVersion } = await writeAndRegister(parts, plan, target, format, context, contentHash, prior !== null);
    return {
      path: file.path,
      state: 'succeeded',
      rows: files.reduce((sum, written) => sum + written.rows, 0),
      bytes: file.bytes,
      contentHash,
      keys: files.map((written) => written.key),
      schemaVersion,
      error: null,
    };
  } catch (error) {
    if (signal?.aborted && error === signal.reason) throw error;
    return {
      path: file.path,
      state: 'failed',
      rows: 0,
      bytes: file.bytes,
      contentHash,
      keys: [],
      schemaVersion: null,
      error: describeError(error, label),
    };
  }
}

/** The target table's columns for this file: the stream's, the declared ones, or inferred from the file. */
async function resolveTarget(parts: ImportParts, plan: ImportPlan, format: ImportFormat, context: FileContext): Promise<ImportTarget> {
  if (plan.stream) {
    return { table: plan.table, kind: 'raw', prefix: `raw/${plan.table}`, fields: plan.stream.fields, eventTime: plan.stream.eventTime };
  }
  const existing = await parts.catalog.table(plan.table);
  let fields: readonly FieldSpec[];
  if (plan.schema) fields = plan.schema;
  else {
    const inferred = await format.infer(context);
    const merged = existing ? mergeInferred(plan.table, existing.columns, inferred) : inferred;
    fields = withEventTime(plan.table, merged, plan.eventTime, true);
  }
  // Refuse an incompatible schema before writing anything (the catalog checks again when it registers). When
  // nothing changes, the files take the current version's column order: a version's files all look alike.
  if (existing && diffSchemas(plan.table, existing.columns, fields) === null) fields = existing.columns;
  return { table: plan.table, kind: 'imported', prefix: `imported/${plan.table}`, fields, eventTime: plan.eventTime };
}

/**
 * Writes the file's chunk and registers it: the schema version first (a new one when the columns changed),
 * then the files with the content hash, in one transaction. Anything published and not registered is removed.
 */
async function writeAndRegister(
  parts: ImportParts,
  plan: ImportPlan,
  target: ImportTarget,
  format: ImportFormat,
  context: FileContext,
  contentHash: string,
  importedBefore: boolean,
): Promise<{ files: NewChunkFile[]; schemaVersion: number }> {
  const prepared = await format.prepare(context, target);
  try {
    if (context.signal?.aborted) throw context.signal.reason;
    const stem = await nextStem(parts.catalog, plan.table, contentHash, importedBefore);
    let files: NewChunkFile[];
    try {
      files = await parts.writer.write({
        prefix: target.prefix,
        stem,
        eventTime: target.eventTime,
        source: prepared.source,
        ...(prepared.parameters ? { parameters: prepared.parameters } : {}),
      });
    } catch (error) {
      await removeStem(parts.store, target.prefix, stem);
      throw await prepared.explain(error);
    }
    try {
      const version =
        target.kind === 'imported'
          ? (await parts.catalog.ensureTable(plan.table, 'imported', target.fields)).version
          : ((await parts.catalog.table(plan.table))?.schemaVersion ?? 1);
      await parts.catalog.commitImport(plan.table, contentHash, context.path, files);
      return { files, schemaVersion: version };
    } catch (error) {
      for (const file of files) await parts.store.delete(file.key);
      throw error;
    }
  } finally {
    await prepared.cleanup();
  }
}

/**
 * The file stem of an import's chunk: `import-<first 16 hex of the sha256>-<n>`, n counting imports of the
 * same content into the table (more than one only with allowDuplicate), so names never collide. Content never
 * imported before is n = 1 without a look at the chunk list: its hash is registered with its first chunks.
 */
async function nextStem(catalog: Catalog, table: string, contentHash: string, duplicate: boolean): Promise<string> {
  const prefix = `import-${contentHash.slice(0, 16)}-`;
  if (!duplicate) return `${prefix}1`;
  let n = 0;
  for (const chunk of await catalog.chunks(table)) {
    const name = chunk.key.slice(chunk.key.lastIndexOf('/') + 1);
    if (name.startsWith(prefix)) n = Math.max(n, Number.parseInt(name.slice(prefix.length), 10) || 0);
  }
  return `${prefix}${n + 1}`;
}

/** Removes the files of a write that failed part-way (published for some partitions, not registered). */
async function removeStem(store: ObjectStore, prefix: string, stem: string): Promise<void> {
  for (const key of await store.list(`${prefix}/`)) {
    if (key.endsWith(`/${stem}.parquet`)) await store.delete(key);
  }
}

/** sha256 of a file's bytes, read in large pieces. */
async function hashFile(path: string, signal: AbortSignal | undefined, onBytes: (done: number) => void): Promise<string> {
  const hash = createHash('sha256');
  let done = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 }) as AsyncIterable<Buffer>) {
    if (signal?.aborted) throw signal.reason;
    hash.update(chunk);
    onBytes((done += chunk.length));
  }
  return hash.digest('hex');
}

/** A file's error for its result: Strata's errors keep their code; anything else names the file. */
function describeError(error: unknown, label: string): { code: string; message: string } {
  if (error instanceof StrataError) {
    const message = error.message.startsWith(label) ? error.message : `${label}: ${error.message}`;
    return { code: error.code, message };
  }
  return { code: 'internal', message: `${label}: ${error instanceof Error ? error.message : String(error)}` };
}
