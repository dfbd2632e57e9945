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
import { describeColumns, describeTarget, duckType, inferredFields, isNumericType, outputColumns } from './target.js';

/** The row number column DuckDB adds on request, for naming a bad row. */
const ROW = 'file_row_number';

/**
 * Parquet: the file's columns are typed already, so each is converted to its declared type in SQL, and a
 * value that does not convert, or would lose something (1.5 into an int), fails the file naming the column
 * and the row.
 */
export const parquetFormat: ImportFormat = {
  async infer(context) {
    return inferredFields(context.label, await describeFile(context), 'json');
  },

  async prepare(context, target): Promise<PreparedSource> {
    const columns = new Map((await describeFile(context)).map((column) => [column.name, column.type]));
    const byName = new Map(target.fields.map((field) => [field.name, field]));
    for (const name of columns.keys()) {
      if (!byName.has(name)) {
        throw new MalformedInputError(`${context.label}: column ${JSON.stringify(name)} is not in the schema of ${describeTarget(target)}`);
      }
    }
    for (const field of target.fields) {
      if (!columns.has(field.name) && !field.nullable) {
        throw new MalformedInputError(`${context.label}: the file lacks column "${field.name}", which ${describeTarget(target)} requires`);
      }
    }
    const value = (field: FieldSpec) => {
      const type = columns.get(field.name);
      return type === undefined ? `NULL::${duckType(field)}` : convertedValue(field, type);
    };
    const read = `read_parquet(${sqlString(context.path)}, ${ROW} = true)`;
    // A conversion DuckDB has no cast for fails when the query is bound: find the column before writing.
    try {
      await describeColumns(context.db, `SELECT ${target.fields.map(value).join(', ')} FROM ${read}`);
    } catch (error) {
      for (const field of target.fields) {
        try {
          await describeColumns(context.db, `SELECT ${value(field)} FROM ${read}`);
        } catch {
          throw new MalformedInputError(
            `${context.label}: column "${field.name}" is ${columns.get(field.name)} in the file, which does not convert to ${field.type}`,
          );
        }
      }
      throw new MalformedInputError(`${context.label}: ${firstLine(error)}`);
    }
    return {
      source: `SELECT ${outputColumns(target, value)} FROM ${read}`,
      explain: async (error) => {
        const failed = parseCheckFailure(error);
        if (failed === null) return new MalformedInputError(`${context.label}: ${firstLine(error)}`);
        const field = byName.get(failed.field)!;
        const [row, ...rest] = failed.detail.split(':');
        const shown = rest.join(':');
        const problem =
          failed.kind === 'null'
            ? 'must not be null'
            : `expected ${EXPECTED[field.type]}, got ${showValue(shown)} (${columns.get(field.name)} in the file)`;
        return new MalformedInputError(`${context.label} row ${Number(row) + 1}: field "${field.name}": ${problem}`);
      },
      cleanup: async () => {},
    };
  },
};

async function describeFile(context: FileContext): Promise<{ name: string; type: string }[]> {
  try {
    return (await describeColumns(context.db, `SELECT * FROM read_parquet(${sqlString(context.path)})`)).filter(
      (column) => column.name !== ROW,
    );
  } catch (error) {
    throw new MalformedInputError(`${context.label}: not a Parquet file DuckDB can read: ${firstLine(error)}`);
  }
}

/**
 * A column's value converted from its type in the file (`from`) to the declared one. The conversion answers
 * NULL when a value does not convert; a numeric one must also convert back to the same value, so 1.5 is not
 * rounded into an int and 2^40 is not cut into one.
 */
function convertedValue(field: FieldSpec, from: string): string {
  const v = quoteIdent(field.name);
  const to = duckType(field);
  const source = from.toUpperCase();
  let converted: string | null; // null: the value as it is, no check needed
  if (source === to) converted = null;
  else if (field.type === 'timestamp' && (source.startsWith('TIMESTAMP') || source === 'DATE')) converted = null;
  else if (field.type === 'timestamp' && source === 'VARCHAR') converted = `TRY_CAST(${v} AS TIMESTAMPTZ)::TIMESTAMP`;
  else if (field.type === 'json' && source !== 'VARCHAR') converted = null;
  else if (field.type === 'string') converted = null;
  else if ((field.type === 'int' || field.type === 'bigint') && source === 'VARCHAR') {
    converted = `CASE WHEN regexp_full_match(${v}, '\\s*-?[0-9]+\\s*') THEN TRY_CAST(${v} AS ${to}) END`;
  } else if (isNumericType(source) && (field.type === 'int' || field.type === 'bigint' || field.type === 'double')) {
    converted = `CASE WHEN TRY_CAST(${v} AS ${to}) = ${v} THEN TRY_CAST(${v} AS ${to}) END`;
  } else converted = `TRY_CAST(${v} AS ${to})`;

  let value: string;
  if (converted !== null) value = `coalesce(${converted}, ${checkFailure('convert', field.name, `${ROW}, ':', ${v}::VARCHAR`)})`;
  else if (field.type === 'json' && source !== 'JSON') value = `to_json(${v})`;
  else if (field.type === 'string' && source !== 'VARCHAR') value = `${v}::VARCHAR`;
  else value = `${v}::${to}`;
  const whenNull = field.nullable ? 'NULL' : checkFailure('null', field.name, `${ROW}, ':'`);
  return `CAST(CASE WHEN ${v} IS NULL THEN ${whenNull} ELSE ${value} END AS ${to})`;
}
