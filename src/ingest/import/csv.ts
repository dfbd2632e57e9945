import { open } from 'node:fs/promises';
import type { FieldSpec } from '../../config/index.js';
import { MalformedInputError } from '../../errors.js';
import { quoteIdent, sqlString } from '../../util/duckdb.js';
import {
  checkFailure,
  EXPECTED,
  firstLine,
  parseCheckFailure,
  showValue,
  type FileContext,
  type ImportFormat,
  type PreparedSource,
} from './format.js';
import { describeColumns, describeTarget, duckType, inferredFields, outputColumns, strataTypeOf } from './target.js';

/**
 * The one CSV dialect read: a header line, comma-separated, `"` quoting with `""` inside quotes (RFC 4180).
 * Fixing it, rather than letting DuckDB sniff, makes a broken line an error instead of a different guess, and
 * strict mode refuses lines with too many or too few values and unterminated quotes.
 */
const DIALECT = `header = true, delim = ',', quote = '"', escape = '"', strict_mode = true`;

/** A header longer than this is refused rather than read without end. */
const MAX_HEADER_BYTES = 1024 * 1024;

/** Integer text as ingest accepts it; DuckDB's own cast would round `1.5` and read `0x10`. */
const INTEGER_TEXT = String.raw`\s*-?[0-9]+\s*`;

/**
 * How DuckDB reads each column of a declared type, and the expression that turns what it read into the
 * column's value (NULL when the value does not convert). Types DuckDB parses strictly are read as such, so
 * its error names the line; integers and JSON are read as text and checked here.
 */
const READ: Record<FieldSpec['type'], { read: string; convert: ((v: string) => string) | null }> = {
  string: { read: 'VARCHAR', convert: null },
  int: { read: 'VARCHAR', convert: (v) => `CASE WHEN regexp_full_match(${v}, '${INTEGER_TEXT}') THEN TRY_CAST(${v} AS INTEGER) END` },
  bigint: { read: 'VARCHAR', convert: (v) => `CASE WHEN regexp_full_match(${v}, '${INTEGER_TEXT}') THEN TRY_CAST(${v} AS BIGINT) END` },
  double: { read: 'DOUBLE', convert: null },
  boolean: { read: 'BOOLEAN', convert: null },
  // Read with its offset, if any, then as UTC wall time (the writer's session is UTC; no offset means UTC).
  timestamp: { read: 'TIMESTAMPTZ', convert: null },
  date: { read: 'DATE', convert: null },
  json: { read: 'VARCHAR', convert: (v) => `TRY_CAST(${v} AS JSON)` },
};

/**
 * CSV, read by DuckDB with the declared types. A line DuckDB cannot split or convert is reported with the line
 * number DuckDB gives; a value the importer checks itself (an integer, JSON, a required value) is located by a
 * second scan that numbers the records, only once a check has failed.
 */
export const csvFormat: ImportFormat = {
  async infer(context) {
    const header = await readHeader(context);
    let columns;
    try {
      columns = await describeColumns(context.db, `SELECT * FROM read_csv(${sqlString(context.path)}, ${DIALECT}, sample_size = -1)`);
    } catch (error) {
      // The sniffer's message lists its search space; reading the file as text names the broken line instead.
      const text = Object.fromEntries(header.map((name) => [name, 'VARCHAR']));
      try {
        await context.db.run(`SELECT count(*) FROM ${readCsv(context.path, text)}`);
      } catch (readError) {
        throw explainDuckDbError(context, readError);
      }
      throw new MalformedInputError(`${context.label}: DuckDB could not infer the column types: ${firstLine(error)}`);
    }
    if (columns.length !== header.length) {
      throw new MalformedInputError(`${context.label}: the header names ${header.length} columns, DuckDB found ${columns.length}`);
    }
    return inferredFields(
      context.label,
      columns.map((column, i) => ({ name: header[i]!, type: column.type })),
      'string',
    );
  },

  async prepare(context, target): Promise<PreparedSource> {
    const header = await readHeader(context);
    const byName = new Map(target.fields.map((field) => [field.name, field]));
    const seen = new Set<string>();
    for (const name of header) {
      if (seen.has(name)) throw new MalformedInputError(`${context.label} line 1: column "${name}" appears twice in the header`);
      seen.add(name);
      if (!byName.has(name)) {
        throw new MalformedInputError(`${context.label} line 1: column ${JSON.stringify(name)} is not in the schema of ${describeTarget(target)}`);
      }
    }
    for (const field of target.fields) {
      if (!seen.has(field.name) && !field.nullable) {
        throw new MalformedInputError(
          `${context.label} line 1: the header lacks column "${field.name}", which ${describeTarget(target)} requires`,
        );
      }
    }
    const columns = Object.fromEntries(header.map((name) => [name, READ[byName.get(name)!.type].read]));
    const read = readCsv(context.path, columns);
    const source = `SELECT ${outputColumns(target, (field) => (seen.has(field.name) ? checkedValue(field) : `NULL::${duckType(field)}`))} FROM ${read}`;
    return {
      source,
      explain: async (error) => {
        const failed = parseCheckFailure(error);
        if (failed === null) return explainDuckDbError(context, error);
        const field = byName.get(failed.field)!;
        return locateFailure(context, read, field, failed.kind);
      },
      cleanup: async () => {},
    };
  },
};

/** `read_csv` over a file with the fixed dialect and these columns (name → DuckDB type), in header order. */
function readCsv(path: string, columns: Record<string, string>): string {
  const struct = Object.entries(columns).map(([name, type]) => `${sqlString(name)}: ${sqlString(type)}`);
  return `read_csv(${sqlString(path)}, ${DIALECT}, auto_detect = false, columns = {${struct.join(', ')}})`;
}

/** A column's value as written: converted, and refused (by a marked error) when missing or not convertible. */
function checkedValue(field: FieldSpec): string {
  const v = quoteIdent(field.name);
  const { convert } = READ[field.type];
  const whenNull = field.nullable ? 'NULL' : checkFailure('null', field.name, v);
  let value = field.type === 'timestamp' ? `${v}::TIMESTAMP` : v;
  if (convert !== null) value = `coalesce(${convert(v)}, ${checkFailure('convert', field.name, v)})`;
  return `CAST(CASE WHEN ${v} IS NULL THEN ${whenNull} ELSE ${value} END AS ${duckType(field)})`;
}

/**
 * Finds the first record that failed a check by scanning the file again with record numbers. The line is the
 * record number plus the header's; a value spanning lines inside quotes would shift it, which the message
 * cannot know.
 */
async function locateFailure(context: FileContext, read: string, field: FieldSpec, kind: 'null' | 'convert'): Promise<Error> {
  const v = quoteIdent(field.name);
  const convert = READ[field.type].convert;
  const bad = kind === 'null' || convert === null ? `${v} IS NULL` : `${v} IS NOT NULL AND (${convert(v)}) IS NULL`;
  const reader = await context.db.runAndReadAll(
    `SELECT record, ${v}::VARCHAR FROM (SELECT row_number() OVER () AS record, ${v} FROM ${read}) WHERE ${bad} ORDER BY record LIMIT 1`,
  );
  const [row] = reader.getRows();
  const line = row ? `line ${Number(row[0]) + 1}` : 'a line';
  const problem = kind === 'null' ? 'must not be null' : `expected ${EXPECTED[field.type]}, got ${showValue(String(row?.[1] ?? ''))}`;
  return new MalformedInputError(`${context.label} ${line}: field "${field.name}": ${problem}`);
}

/**
 * DuckDB's CSV errors as `file.csv line N: what is wrong`. DuckDB counts physical lines from 1, the header
 * included, and prints the line, the reason and a list of possible fixes; only the line and reason are kept.
 */
function explainDuckDbError(context: FileContext, error: unknown): Error {
  const message = error instanceof Error ? error.message : String(error);
  const line = /CSV Error on Line: (\d+)/.exec(message)?.[1];
  if (line === undefined) return new MalformedInputError(`${context.label}: ${firstLine(error)}`);
  let reason: string;
  const columns = /Expected Number of Columns: (\d+) Found: (\d+)/.exec(message);
  const conversion = /Error when converting column "([^"]+)"\. (.*)/.exec(message);
  if (columns) reason = `expected ${columns[1]} values, found ${columns[2]}`;
  else if (/unterminated quote/i.test(message)) reason = 'a quoted value is not terminated';
  else if (conversion) {
    // `Could not convert string "abc" to 'DOUBLE'`, in ingest's words.
    const value = /Could not convert string "(.*)" to '([^']+)'/.exec(conversion[2]!);
    const problem = value ? `expected ${EXPECTED[strataTypeOf(value[2]!, 'string')]}, got ${showValue(value[1]!)}` : conversion[2]!;
    reason = `field "${conversion[1]}": ${problem}`;
  }
  else {
    const lines = message.split('\n');
    const after = lines.findIndex((text) => text.startsWith('Original Line:'));
    reason = lines.slice(after + 1).find((text) => text.trim().length > 0 && !text.startsWith('Possible fixes')) ?? firstLine(error);
  }
  return new MalformedInputError(`${context.label} line ${line}: ${reason}`);
}

/**
 * The column names of the header line: the first record, split on commas outside quotes, `""` read as `"`.
 * A UTF-8 byte-order mark is skipped, as DuckDB skips it.
 */
async function readHeader(context: FileContext): Promise<string[]> {
  const handle = await open(context.path, 'r');
  const pieces: Buffer[] = [];
  let length = 0;
  try {
    for (;;) {
      const piece = Buffer.alloc(64 * 1024);
      const { bytesRead } = await handle.read(piece, 0, piece.length, length);
      pieces.push(piece.subarray(0, bytesRead));
      length += bytesRead;
      if (bytesRead === 0 || piece.subarray(0, bytesRead).includes(10)) break;
      if (length >= MAX_HEADER_BYTES) throw new MalformedInputError(`${context.label} line 1: the header is over 1 MB`);
    }
  } finally {
    await handle.close();
  }
  let text = Buffer.concat(pieces).toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const names: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        current += '"';
        i++;
      } else if (c === '"') quoted = false;
      else current += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      names.push(current);
      current = '';
    } else if (c === '\n') break;
    else if (c !== '\r') current += c;
  }
  names.push(current);
  if (names.length === 1 && names[0] === '') {
    throw new MalformedInputError(`${context.label}: the file is empty; a CSV file needs a header line naming its columns`);
  }
  const blank = names.findIndex((name) => name.trim() === '');
  if (blank !== -1) throw new MalformedInputError(`${context.label} line 1: column ${blank + 1} of the header has no name`);
  return names;
}
