import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { FieldSpec } from '../../config/index.js';
import { MalformedInputError } from '../../errors.js';
import { readJsonColumns, readJsonText } from '../../lake/index.js';
import { quoteIdent, sqlString } from '../../util/duckdb.js';
import { compileRecordValidator } from '../record-validator.js';
import { firstLine, type FileContext, type ImportFormat, type PreparedSource } from './format.js';
import { describeColumns, inferredFields, outputColumns, type ImportTarget } from './target.js';

/** Staged output is written in pieces of about this size, so the staging file is written in few large calls. */
const WRITE_BYTES = 4 * 1024 * 1024;

/**
 * Most canonical NDJSON an import holds in memory when it may not stage (an encrypted data directory): DuckDB
 * reads it as one BLOB. A larger file is refused, naming this bound, rather than written in the clear.
 */
export const MAX_IN_MEMORY_IMPORT_BYTES = 1024 * 1024 * 1024;

/**
 * Ingest's timestamp spellings (see record-validator.ts) with a time part: a text column whose every value
 * matches is inferred as a timestamp. DuckDB's own detection wants one format for the whole column.
 */
const TIMESTAMP_TEXT = String.raw`\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?\s*(Z|z|[+-]\d{2}(:?\d{2})?)?`;

/**
 * NDJSON: every line goes through the same validator as HTTP ingest, so a value is accepted, coerced and
 * spelled exactly as if it had been posted; the canonical lines are staged and read by the chunk writer the
 * way delivery reads the log. The first bad line stops the file, naming the line and the field.
 */
export const ndjsonFormat: ImportFormat = {
  async infer(context) {
    const scan = `SELECT * FROM read_json(${sqlString(context.path)}, format = 'newline_delimited', sample_size = -1)`;
    let columns;
    try {
      columns = await describeColumns(context.db, scan);
    } catch (error) {
      // DuckDB's message for a broken line is vague about where; the validator's pass names the line.
      await findMalformedLine(context);
      throw new MalformedInputError(`${context.label}: DuckDB could not infer a schema: ${firstLine(error)}`);
    }
    const fields = inferredFields(context.label, columns, 'json');
    const text = fields.filter((field) => field.type === 'string');
    if (text.length === 0) return fields;
    // One pass over the file tells which text columns hold nothing but timestamps.
    const tests = text.map(
      (field) => `bool_and(regexp_full_match(${quoteIdent(field.name)}, ${sqlString(TIMESTAMP_TEXT)})) AS ${quoteIdent(field.name)}`,
    );
    const reader = await context.db.runAndReadAll(`SELECT ${tests.join(', ')} FROM (${scan})`);
    const [row] = reader.getRows();
    const timestamps = new Set(text.filter((_, i) => row?.[i] === true).map((field) => field.name));
    return fields.map((field) => (timestamps.has(field.name) ? { ...field, type: 'timestamp' as const } : field));
  },

  async prepare(context, target): Promise<PreparedSource> {
    const select = outputColumns(target, (field) => quoteIdent(field.name));
    const explain = async (error: unknown) => new MalformedInputError(`${context.label}: ${firstLine(error)}`);
    if (context.stageInMemory) {
      const pieces: Buffer[] = [];
      let held = 0;
      await stageValidated(context, target, async (data) => {
        held += data.length;
        if (held > MAX_IN_MEMORY_IMPORT_BYTES) {
          throw new MalformedInputError(
            `${context.label}: an NDJSON import into an encrypted data directory is read through memory, at most ` +
              `${MAX_IN_MEMORY_IMPORT_BYTES / 1024 / 1024} MiB of records a file; split the file`,
          );
        }
        pieces.push(data);
      });
      const records = Buffer.concat(pieces, held);
      return {
        source: `SELECT ${select} FROM (${readJsonText(target.fields)}) AS records`,
        parameters: [new Uint8Array(records.buffer, records.byteOffset, records.length)],
        explain,
        cleanup: async () => undefined,
      };
    }
    const staged = context.store.stagingPath(`import-${target.table}-ndjson`);
    try {
      const out = createWriteStream(staged, { flags: 'wx' });
      const closed = new Promise<void>((resolve, reject) => {
        out.on('close', resolve);
        out.on('error', reject);
      });
      try {
        await stageValidated(context, target, (data) => write(out, data));
      } finally {
        out.end();
        await closed;
      }
    } catch (error) {
      await rm(staged, { force: true });
      throw error;
    }
    const columns = readJsonColumns(target.fields);
    const read = `read_json(${sqlString(staged)}, format = 'newline_delimited', columns = ${columns})`;
    return {
      source: `SELECT ${select} FROM ${read}`,
      explain,
      cleanup: () => rm(staged, { force: true }),
    };
  },
};

/**
 * Streams the file line by line through the record validator and hands each valid record's canonical line to
 * `sink`, in pieces of about {@link WRITE_BYTES}: the producer's own text when nothing was rewritten, as ingest
 * stores it. Blank lines are skipped.
 */
async function stageValidated(context: FileContext, target: ImportTarget, sink: (data: Buffer) => Promise<void>): Promise<void> {
  const validate = compileRecordValidator({
    name: target.table,
    shards: 1,
    partitionKey: null,
    eventTime: target.eventTime,
    fields: target.fields as FieldSpec[],
  });
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const flush = async () => {
    if (pending.length === 0) return;
    const data = Buffer.concat(pending, pendingBytes);
    pending = [];
    pendingBytes = 0;
    await sink(data);
  };
  await forEachLine(
    context,
    (line, number) => {
      if (isBlank(line)) return;
      const record = parseLine(context, line, number);
      const result = validate(record);
      if (typeof result === 'object') {
        // The validator speaks of streams; an imported table is named as such.
        const message = target.kind === 'imported' ? result.message.replace(/of stream "/, 'of table "') : result.message;
        const field = result.field !== undefined ? `field "${result.field}": ` : '';
        throw new MalformedInputError(`${context.label} line ${number}: ${field}${message}`);
      }
      const canonical = result === 'unchanged' ? line : Buffer.from(JSON.stringify(record));
      pending.push(canonical, NEWLINE);
      pendingBytes += canonical.length + 1;
    },
    async () => {
      if (pendingBytes >= WRITE_BYTES) await flush();
    },
  );
  await flush();
}

const NEWLINE = Buffer.from('\n');

function write(out: WriteStream, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => out.write(data, (error) => (error ? reject(error) : resolve())));
}

/**
 * Calls `onLine` for each line of the file, as bytes numbered from 1 without their line ending, and
 * `afterChunk` after each piece read (where the caller may write). Lines are cut at 0x0A, which never occurs
 * inside a multi-byte UTF-8 character. The per-line call is synchronous: a million lines must not cost a
 * million promises. Reports bytes read, and stops when the import is aborted.
 */
async function forEachLine(
  context: FileContext,
  onLine: (line: Buffer, number: number) => void,
  afterChunk: () => Promise<void> = async () => {},
): Promise<void> {
  let carry: Buffer[] = [];
  let number = 0;
  const input = createReadStream(context.path, { highWaterMark: 1024 * 1024 });
  try {
    for await (const chunk of input as AsyncIterable<Buffer>) {
      if (context.signal?.aborted) throw context.signal.reason;
      context.onBytes(chunk.length);
      let start = 0;
      let newline = chunk.indexOf(10, start);
      while (newline !== -1) {
        const piece = chunk.subarray(start, newline);
        const line = carry.length > 0 ? Buffer.concat([...carry, piece]) : piece;
        carry = [];
        onLine(trimCarriageReturn(line), ++number);
        start = newline + 1;
        newline = chunk.indexOf(10, start);
      }
      if (start < chunk.length) carry.push(chunk.subarray(start));
      await afterChunk();
    }
    if (carry.length > 0) onLine(trimCarriageReturn(Buffer.concat(carry)), ++number);
  } finally {
    input.destroy();
  }
}

/** Whether a line holds only spaces and tabs (blank lines are skipped, as `strata ingest` skips them). */
function isBlank(line: Buffer): boolean {
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c !== 0x20 && c !== 0x09 && c !== 0x0d) return false;
  }
  return true;
}

function trimCarriageReturn(line: Buffer): Buffer {
  return line.length > 0 && line[line.length - 1] === 0x0d ? line.subarray(0, line.length - 1) : line;
}

/** Throws naming the first line that is not a JSON object, if there is one. */
async function findMalformedLine(context: FileContext): Promise<void> {
  await forEachLine({ ...context, onBytes: () => {} }, (line, number) => {
    if (isBlank(line)) return;
    const record = parseLine(context, line, number);
    if (typeof record !== 'object' || record === null || Array.isArray(record)) {
      throw new MalformedInputError(`${context.label} line ${number}: a record must be a JSON object`);
    }
  });
}

/** One line's JSON value, or an error naming the file and the line. */
function parseLine(context: FileContext, line: Buffer, number: number): unknown {
  try {
    return JSON.parse(line.toString('utf8'));
  } catch (error) {
    throw new MalformedInputError(`${context.label} line ${number}: not valid JSON: ${(error as Error).message}`);
  }
}
