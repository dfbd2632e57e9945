import type { DuckDBConnection } from '@duckdb/node-api';
import type { FieldSpec } from '../../config/index.js';
import type { ObjectStore } from '../../lake/index.js';
import { sqlString } from '../../util/duckdb.js';
import type { ImportTarget } from './target.js';

/** The file formats bulk import reads. */
export type ImportFormatName = 'ndjson' | 'csv' | 'parquet';

/** What a format reader is given for one file. */
export interface FileContext {
  /** The absolute path of the file. */
  readonly path: string;
  /** How messages name the file: its base name. */
  readonly label: string;
  /** A DuckDB connection of the import's own, for describing files and diagnosing bad rows (UTC, one thread). */
  readonly db: DuckDBConnection;
  readonly store: ObjectStore;
  readonly signal: AbortSignal | undefined;
  /** Told of the bytes of the file read while preparing it (NDJSON streams the file through the validator). */
  readonly onBytes: (bytes: number) => void;
  /**
   * Stage nothing on disk: the data directory is encrypted at rest, and a staged file would hold the file's rows in
   * the clear. Formats that stage hand their rows to DuckDB through memory instead.
   */
  readonly stageInMemory: boolean;
}

/** A file made ready for the chunk writer. */
export interface PreparedSource {
  /** The DuckDB query yielding the file's rows with the target's columns, types and order. */
  readonly source: string;
  /** Bytes bound to `$1`, `$2`... of `source` (rows handed over through memory; see FileContext.stageInMemory). */
  readonly parameters?: readonly Uint8Array[];
  /** Turns an error raised while the writer ran `source` into one that names the file, line (or row) and field. */
  explain(error: unknown): Promise<Error>;
  /** Removes whatever preparing staged. */
  cleanup(): Promise<void>;
}

/** One file format: how to infer a schema from a file, and how to read a file into a target's columns. */
export interface ImportFormat {
  /** The file's columns as DuckDB infers them, every one nullable. */
  infer(context: FileContext): Promise<FieldSpec[]>;
  /** Checks the file's columns against the target and answers the query that reads it. */
  prepare(context: FileContext, target: ImportTarget): Promise<PreparedSource>;
}

/**
 * Row checks inside the writer's query raise DuckDB's `error()` with this mark, the check and the field, so
 * that the importer can tell its own checks from other failures and name the line. The message must depend
 * on the row (it carries the value), or DuckDB would fold the call into a constant and raise it at once.
 */
const CHECK_MARK = 'strata-import-check';

export type CheckKind = 'null' | 'convert';

/** `error(...)` raising a check failure for `field`; `detail` is a SQL expression (the value, a row number). */
export function checkFailure(kind: CheckKind, field: string, detail: string): string {
  return `error(concat(${sqlString(`${CHECK_MARK}:${kind}:${field}:`)}, ${detail}))`;
}

/** The check that failed, when `error` is one raised by {@link checkFailure}. */
export function parseCheckFailure(error: unknown): { kind: CheckKind; field: string; detail: string } | null {
  const message = error instanceof Error ? error.message : String(error);
  const match = new RegExp(`${CHECK_MARK}:(null|convert):([A-Za-z_][A-Za-z0-9_]*):(.*)`).exec(message);
  return match ? { kind: match[1] as CheckKind, field: match[2]!, detail: match[3]!.trim() } : null;
}

/** What a value of each type must look like, in the words ingest uses. */
export const EXPECTED: Record<FieldSpec['type'], string> = {
  string: 'a string',
  int: 'a 32-bit integer',
  bigint: 'a 64-bit integer',
  double: 'a number',
  boolean: 'true or false',
  timestamp: 'an ISO-8601 timestamp',
  date: 'a date YYYY-MM-DD',
  json: 'JSON text',
};

/** A value for a message: quoted, and cut when long. */
export function showValue(value: string): string {
  return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
}

/** The first line of an error message, without DuckDB's "... Error: " prefix. */
export function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return (message.split('\n')[0] ?? '').replace(/^[A-Za-z ]*Error: /, '');
}
