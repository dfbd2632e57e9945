import type { DuckDBConnection } from '@duckdb/node-api';
import { diffSchemas } from '../../catalog/index.js';
import { NAME_PATTERN, type ColumnType, type FieldSpec } from '../../config/index.js';
import { MalformedInputError, SchemaError } from '../../errors.js';
import { DUCKDB_TYPES, quoteIdent } from '../../util/duckdb.js';

/**
 * Where one file's rows go. A configured stream's table (`raw`): its rows are historical records of the
 * stream, checked against the stream's schema and given NULL offset columns so that they union with
 * delivered chunks. Any other name is an `imported` table with a schema of its own.
 */
export interface ImportTarget {
  readonly table: string;
  readonly kind: 'raw' | 'imported';
  /** The object-key prefix of the table's files: `raw/<stream>` or `imported/<table>`. */
  readonly prefix: string;
  /** The columns every written file has, in order (offset columns of a stream table aside). */
  readonly fields: readonly FieldSpec[];
  /** The timestamp column whose UTC day partitions the rows, or null (every row in `dt=__unknown__`). */
  readonly eventTime: string | null;
}

/** The columns a delivered chunk has beside the stream's own; imported rows have no offset, so NULL. */
const NULL_OFFSETS = 'NULL::INTEGER AS "__shard", NULL::BIGINT AS "__seq"';

/** The SELECT list that gives a file the target's columns, in order, from per-field expressions. */
export function outputColumns(target: ImportTarget, expression: (field: FieldSpec) => string): string {
  const columns = target.fields.map((field) => `${expression(field)} AS ${quoteIdent(field.name)}`);
  if (target.kind === 'raw') columns.push(NULL_OFFSETS);
  return columns.join(', ');
}

/** How a message names the target: `stream "clicks"` or `table "orders"`. */
export function describeTarget(target: Pick<ImportTarget, 'kind' | 'table'>): string {
  return `${target.kind === 'raw' ? 'stream' : 'table'} "${target.table}"`;
}

const INT_TYPES = new Set(['INTEGER', 'SMALLINT', 'TINYINT', 'USMALLINT', 'UTINYINT']);
const BIGINT_TYPES = new Set(['BIGINT', 'HUGEINT', 'UINTEGER', 'UBIGINT', 'UHUGEINT']);
const DOUBLE_TYPES = new Set(['DOUBLE', 'FLOAT', 'REAL']);

/**
 * The Strata type of a column DuckDB found in a file. `fallback` is what anything without a Strata
 * counterpart becomes: `json` for NDJSON and Parquet (structs, lists, maps keep their shape as JSON), `string`
 * for CSV, whose values are text.
 */
export function strataTypeOf(duckType: string, fallback: ColumnType): ColumnType {
  const type = duckType.toUpperCase();
  if (type === 'VARCHAR' || type === 'UUID') return 'string';
  if (INT_TYPES.has(type)) return 'int';
  if (BIGINT_TYPES.has(type)) return 'bigint';
  if (DOUBLE_TYPES.has(type) || type.startsWith('DECIMAL')) return 'double';
  if (type === 'BOOLEAN') return 'boolean';
  if (type.startsWith('TIMESTAMP')) return 'timestamp';
  if (type === 'DATE') return 'date';
  if (type === 'JSON') return 'json';
  return fallback;
}

/** Whether a DuckDB type is a number, so a conversion to another number type must be checked for loss. */
export function isNumericType(duckType: string): boolean {
  const type = duckType.toUpperCase();
  return INT_TYPES.has(type) || BIGINT_TYPES.has(type) || DOUBLE_TYPES.has(type) || type.startsWith('DECIMAL');
}

/** The columns of a file as DuckDB describes a query over it: name and DuckDB type, in order. */
export async function describeColumns(db: DuckDBConnection, sql: string): Promise<{ name: string; type: string }[]> {
  const reader = await db.runAndReadAll(`DESCRIBE ${sql}`);
  return reader.getRows().map((row) => ({ name: String(row[0]), type: String(row[1]) }));
}

/**
 * Field specs from the columns DuckDB inferred for a file, every one nullable (a file proves nothing about
 * absent values). Column names become SQL identifiers and path segments nowhere else, but they must still be
 * safe names, as in a config.
 */
export function inferredFields(
  label: string,
  columns: readonly { name: string; type: string }[],
  fallback: ColumnType,
): FieldSpec[] {
  const fields: FieldSpec[] = [];
  for (const column of columns) {
    if (!NAME_PATTERN.test(column.name)) {
      throw new MalformedInputError(
        `${label}: column ${JSON.stringify(column.name)} is not a valid column name (a letter or _, then letters, ` +
          'digits and _, at most 63); rename it in the file',
      );
    }
    fields.push({ name: column.name, type: strataTypeOf(column.type, fallback), nullable: true });
  }
  if (fields.length === 0) throw new MalformedInputError(`${label}: the file has no columns`);
  return fields;
}

/**
 * The schema an import with an inferred schema writes into an existing table: the table's columns, each
 * widened when the file needs it (int values in the table, doubles in the file: the column becomes double),
 * then the file's new columns. Columns the file lacks are read as NULL. A file type that would narrow a
 * column keeps the table's type, and the file's values are then checked against it.
 */
export function mergeInferred(table: string, current: readonly FieldSpec[], inferred: readonly FieldSpec[]): FieldSpec[] {
  const found = new Map(inferred.map((field) => [field.name, field]));
  const merged = current.map((column) => {
    const seen = found.get(column.name);
    if (!seen || seen.type === column.type) return column;
    const widened = { ...column, type: seen.type };
    try {
      diffSchemas(table, [column], [widened]);
      return widened;
    } catch (error) {
      if (error instanceof SchemaError) return column;
      throw error;
    }
  });
  const known = new Set(current.map((column) => column.name));
  return [...merged, ...inferred.filter((field) => !known.has(field.name))];
}

/**
 * Checks the event-time column of an imported table: it must be a column, and a timestamp. An inferred
 * string column named by `--event-time` is taken as a timestamp (its values are then checked as such), since
 * DuckDB leaves mixed timestamp spellings as text.
 */
export function withEventTime(table: string, fields: readonly FieldSpec[], eventTime: string | null, inferred: boolean): FieldSpec[] {
  if (eventTime === null) return [...fields];
  const column = fields.find((field) => field.name === eventTime);
  if (!column) {
    throw new MalformedInputError(`event time "${eventTime}" is not a column of table "${table}" (columns: ${fields.map((f) => f.name).join(', ')})`);
  }
  if (column.type === 'timestamp') return [...fields];
  if (inferred && column.type === 'string') {
    return fields.map((field) => (field === column ? { ...field, type: 'timestamp' as const } : field));
  }
  throw new MalformedInputError(`event time "${eventTime}" of table "${table}" is ${column.type}; event time must be a timestamp column`);
}

/** The DuckDB type of a Strata column. */
export function duckType(field: FieldSpec): string {
  return DUCKDB_TYPES[field.type];
}
