import { createHash } from 'node:crypto';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import {
  parseDuration,
  type DefaultValue,
  type FieldSpec,
  type ProjectConfig,
  type StreamConfig,
  type TransformRules,
} from '../config/index.js';
import { ConfigError } from '../errors.js';
import { DUCKDB_TYPES, quoteIdent, sqlString } from '../util/duckdb.js';
import { SqlParser } from '../views/sql-parser.js';
import {
  cleanFieldType,
  cleanNullable,
  cleanSql,
  dedupeSql,
  QUARANTINE_REASON,
  quarantineSql,
  utcFromPartsSql,
  utcPartsSql,
  type TransformSqlInput,
} from './clean-sql.js';
import { readDeriveExpression } from './derive-expression.js';

/** A digest of what a stream's clean records depend on besides the raw records: new rules, new version. */
export type TransformVersion = string & { readonly __brand: 'TransformVersion' };

/** A column of a stream's clean records. */
export interface CleanColumn {
  readonly name: string;
  /** Its DuckDB type (a derived column's as DuckDB inferred it, e.g. `BIGINT` or `DECIMAL(18,2)`). */
  readonly sqlType: string;
  /** A field of the stream's schema, or a column of `derive`. */
  readonly origin: 'field' | 'derived';
  /** Whether a clean record may hold NULL here (a quarantined one may hold anything). */
  readonly nullable: boolean;
}

/** What the layers need to de-duplicate a stream's clean records. */
export interface DedupePlan {
  /** The columns that identify a record: fields or derived columns. */
  readonly keys: readonly string[];
  /** The event-time field the window is measured on. */
  readonly eventTime: string;
  /** The window as declared (`"24h"`) and in milliseconds. */
  readonly within: string;
  readonly withinMs: number;
}

/** A stream's transform, compiled and checked against DuckDB: the SQL both layers run, and what it yields. */
export interface TransformPlan {
  readonly stream: string;
  readonly version: TransformVersion;
  readonly rules: TransformRules;
  /** The clean columns in order: every field (with its type after standardization), then the derived columns. */
  readonly columns: readonly CleanColumn[];
  readonly dedupe: DedupePlan | null;
  /**
   * SQL over `source` answering one row per source row: every source column in its place, the fields cleaned and
   * other columns (`__shard`, `__seq`, `dt`, ...) untouched; then the derived columns; then `__quarantine_reason`,
   * NULL for a clean record. A value that cannot be repaired quarantines its record; the query itself does not
   * fail. `source` must yield every field of the stream with its declared type, as `read_json` with
   * readJsonColumns gives them (a chunk older than a field needs it as a NULL column), and no column named
   * `__quarantine_reason` or starting with `__transform_`.
   */
  cleanSql(source: string): string;
  /**
   * SQL over `source` answering only the records {@link cleanSql} quarantines, with every source column as it came
   * (the raw values, so that a replay after a fix starts from what the producer sent) and `__quarantine_reason`.
   */
  quarantineSql(source: string): string;
  /**
   * SQL over clean records (the rows of {@link cleanSql} whose reason is NULL) keeping, of each key, the first
   * copy and every copy whose event time is the window or more after the copy before it (src/transform/index.ts).
   * `source` must carry the key columns, the event time, `__shard` and `__seq` (NULL for imported rows). With no
   * dedupe rule, every row.
   */
  dedupeSql(source: string): string;
  /** An empty relation with the clean columns and their types: what views over the stream compile against. */
  emptyCleanSql(): string;
}

/**
 * Compiles one stream's transform: defaults are checked to be valid values and every `derive` expression is read
 * and bound by DuckDB against the clean columns before it (a bad expression or an unknown column throws
 * {@link ConfigError} naming the stream and the derived column). Answers null when the stream declares no rules.
 */
export async function compileTransform(stream: StreamConfig): Promise<TransformPlan | null> {
  if (!stream.transform) return null;
  const compiler = await TransformCompiler.open();
  try {
    return await compiler.compile(stream);
  } finally {
    await compiler.close();
  }
}

/**
 * Compiles the transform of every stream that declares one, with one DuckDB for all; the first stream whose rules
 * DuckDB refuses throws {@link ConfigError}, so a bad rule stops Strata before it starts, as views do.
 */
export async function compileTransforms(config: ProjectConfig): Promise<Map<string, TransformPlan>> {
  const plans = new Map<string, TransformPlan>();
  const streams = [...config.streams.values()].filter((stream) => stream.transform);
  if (streams.length === 0) return plans;
  const compiler = await TransformCompiler.open();
  try {
    for (const stream of streams) {
      const plan = await compiler.compile(stream);
      if (plan) plans.set(stream.name, plan);
    }
  } finally {
    await compiler.close();
  }
  return plans;
}

/** An empty relation with these columns, to bind SQL against without data. */
function emptyRelationSql(columns: readonly { name: string; sqlType: string }[]): string {
  return `SELECT ${columns.map((column) => `CAST(NULL AS ${column.sqlType}) AS ${quoteIdent(column.name)}`).join(', ')} WHERE false`;
}

/** One record with these columns, all NULL. */
function nullRecordSql(columns: readonly { name: string; sqlType: string }[]): string {
  return `SELECT ${columns.map((column) => `CAST(NULL AS ${column.sqlType}) AS ${quoteIdent(column.name)}`).join(', ')}`;
}

/** The raw columns as delivery stages them: the fields with their declared types, and the offset columns. */
function emptyRawSql(fields: readonly FieldSpec[]): string {
  return emptyRelationSql([
    ...fields.map((field) => ({ name: field.name, sqlType: DUCKDB_TYPES[field.type] })),
    { name: '__shard', sqlType: 'INTEGER' },
    { name: '__seq', sqlType: 'BIGINT' },
  ]);
}

/** The SQL-generating part of a plan. */
type GeneratedSql = Pick<TransformPlan, 'cleanSql' | 'quarantineSql' | 'dedupeSql'>;

/** DuckDB's message without the SQL excerpt it appends (`LINE 1: ...`), on one line. */
function engineMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split(/\n\s*LINE \d+:/)[0]!.replace(/\s*\n\s*/g, ' ').trim();
}

/** One DuckDB (and its parser) for checking rules; close it when done. */
class TransformCompiler {
  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly connection: DuckDBConnection,
    private readonly parser: SqlParser,
    private readonly functions: { readonly aggregates: ReadonlySet<string>; readonly unstable: ReadonlySet<string> },
  ) {}

  static async open(): Promise<TransformCompiler> {
    const instance = await DuckDBInstance.create(':memory:', { threads: '1' });
    const connection = await instance.connect();
    let parser: SqlParser | null = null;
    try {
      parser = await SqlParser.open();
      const reader = await connection.runAndReadAll(
        `SELECT function_name, bool_or(function_type = 'aggregate'), bool_or(stability IN ('VOLATILE', 'CONSISTENT_WITHIN_QUERY'))
         FROM duckdb_functions() GROUP BY function_name`,
      );
      const aggregates = new Set<string>();
      const unstable = new Set<string>();
      for (const [name, aggregate, changing] of reader.getRows()) {
        if (aggregate === true) aggregates.add(String(name).toLowerCase());
        if (changing === true) unstable.add(String(name).toLowerCase());
      }
      return new TransformCompiler(instance, connection, parser, { aggregates, unstable });
    } catch (error) {
      connection.closeSync();
      instance.closeSync();
      await parser?.close();
      throw error;
    }
  }

  async compile(stream: StreamConfig): Promise<TransformPlan | null> {
    const rules = stream.transform;
    if (!rules) return null;
    const at = `streams.${stream.name}.transform`;
    const problems: string[] = [];

    const defaultLiterals = new Map<string, string>();
    for (const field of stream.fields) {
      const value = rules.defaults.get(field.name);
      if (value === undefined) continue;
      const literal = await this.defaultLiteral(field, value);
      if (literal === null) problems.push(`${at}.defaults.${field.name}: ${JSON.stringify(value)} is not a valid ${field.type}`);
      else defaultLiterals.set(field.name, literal);
    }
    if (problems.length > 0) throw new ConfigError(problems.join('; '));

    const fieldColumns: CleanColumn[] = stream.fields.map((field) => ({
      name: field.name,
      sqlType: DUCKDB_TYPES[cleanFieldType(field, rules)],
      origin: 'field',
      nullable: cleanNullable(field, rules),
    }));

    // Each derived column binds against the clean fields and the derived columns before it, in the form the
    // pipeline runs it in (TRY), so that an error is reported here, naming its column, and never at run time.
    const derivedColumns: CleanColumn[] = [];
    const deriveSql = new Map<string, string>();
    for (const [name, expression] of rules.derive) {
      const visible = [...fieldColumns, ...derivedColumns];
      const read = await readDeriveExpression(expression, new Set(visible.map((column) => column.name)), this.parser, this.functions);
      if ('problem' in read) throw new ConfigError(`${at}.derive.${name}: ${read.problem}`);
      const bound = await this.bind(`SELECT struct_extract(TRY({'value': ${read.sql}}), 'value') FROM (${emptyRelationSql(visible)}) AS source`);
      if ('error' in bound) throw new ConfigError(`${at}.derive.${name}: ${bound.error}`);
      // Binding cannot see a bad constant (`amount + 'lots'` casts 'lots' per row), which would quarantine every
      // record; evaluated once on a record of NULLs, such an expression fails, while NULLs alone make a NULL.
      const failure = await this.failureOn(`SELECT ${read.sql} FROM (${nullRecordSql(visible)}) AS source`);
      if (failure !== null) throw new ConfigError(`${at}.derive.${name}: ${failure} (evaluated on a record whose columns are all NULL)`);
      derivedColumns.push({ name, sqlType: bound.types[0]!, origin: 'derived', nullable: true });
      deriveSql.set(name, read.sql);
    }

    const input: TransformSqlInput = { fields: stream.fields, rules, defaultLiterals, deriveSql };
    const dedupe: DedupePlan | null =
      rules.dedupe && stream.eventTime
        ? { keys: rules.dedupe.keys, eventTime: stream.eventTime, within: rules.dedupe.within, withinMs: parseDuration(rules.dedupe.within) }
        : null;
    const columns = [...fieldColumns, ...derivedColumns];
    const sql: GeneratedSql = {
      cleanSql: (source) => cleanSql(input, source),
      quarantineSql: (source) => quarantineSql(input, source),
      dedupeSql: (source) => (dedupe ? dedupeSql(dedupe.keys, dedupe.eventTime, dedupe.withinMs, source) : `SELECT * FROM (${source}) AS source`),
    };
    await this.assertGeneratedSqlBinds(stream, [...deriveSql.keys()], sql);
    // The generated SQL is everything the clean records depend on besides the raw ones, so it is what the version
    // digests: reordering map entries or keys of standardize, or "24h" for "1d", leaves it; any change of meaning
    // (or of how Strata cleans) makes a new version.
    const version = createHash('sha256')
      .update(JSON.stringify([sql.cleanSql('<source>'), sql.quarantineSql('<source>'), sql.dedupeSql('<source>')]))
      .digest('hex')
      .slice(0, 16) as TransformVersion;
    return { stream: stream.name, version, rules, columns, dedupe, ...sql, emptyCleanSql: () => emptyRelationSql(columns) };
  }

  /** A typed SQL constant for a field's default, or null when DuckDB does not take the value for the type. */
  private async defaultLiteral(field: FieldSpec, value: DefaultValue): Promise<string | null> {
    const type = DUCKDB_TYPES[field.type];
    if (field.type === 'string') return sqlString(String(value));
    const text = typeof value === 'string' ? value : JSON.stringify(value);
    // A timestamp default is read by the rules `utc` reads text by (an offset is applied), then stored as UTC.
    const check = field.type === 'timestamp' ? utcFromPartsSql(utcPartsSql(sqlString(text))) : `TRY_CAST(${sqlString(text)} AS ${type})`;
    const reader = await this.connection.runAndReadAll(`SELECT CAST(${check} AS VARCHAR)`);
    const canonical = reader.getRows()[0]![0];
    if (canonical === null || canonical === undefined) return null;
    return `CAST(${sqlString(field.type === 'timestamp' ? String(canonical) : text)} AS ${type})`;
  }

  /** DuckDB's error running `sql`, or null when it runs. */
  private async failureOn(sql: string): Promise<string | null> {
    try {
      await this.connection.run(sql);
      return null;
    } catch (error) {
      return engineMessage(error);
    }
  }

  /** The output types of `sql` as DuckDB binds it (nothing runs), or DuckDB's error. */
  private async bind(sql: string): Promise<{ types: string[]; names: string[] } | { error: string }> {
    let prepared;
    try {
      prepared = await this.connection.prepare(sql);
    } catch (error) {
      return { error: engineMessage(error) };
    }
    try {
      const types: string[] = [];
      const names: string[] = [];
      for (let i = 0; i < prepared.columnCount; i++) {
        types.push(prepared.columnType(i).toString());
        names.push(prepared.columnName(i));
      }
      return { types, names };
    } finally {
      prepared.destroySync();
    }
  }

  /**
   * The rules were checked one by one; this binds the whole generated SQL over an empty raw source and checks its
   * columns. A failure here is a bug in the generator, not in the user's rules, and says so.
   */
  private async assertGeneratedSqlBinds(stream: StreamConfig, derived: readonly string[], plan: GeneratedSql): Promise<void> {
    const raw = emptyRawSql(stream.fields);
    const fail = (what: string, detail: string): never => {
      throw new Error(`the transform of stream "${stream.name}" generated ${what} that DuckDB refuses (a bug in Strata): ${detail}`);
    };
    const clean = await this.bind(plan.cleanSql(raw));
    if ('error' in clean) return fail('clean SQL', clean.error);
    const expected = [...stream.fields.map((field) => field.name), '__shard', '__seq', ...derived, QUARANTINE_REASON];
    if (clean.names.join(',') !== expected.join(',')) fail('clean SQL', `columns ${clean.names.join(', ')}, expected ${expected.join(', ')}`);
    const quarantine = await this.bind(plan.quarantineSql(raw));
    if ('error' in quarantine) fail('quarantine SQL', quarantine.error);
    const deduped = await this.bind(plan.dedupeSql(plan.cleanSql(raw)));
    if ('error' in deduped) fail('dedupe SQL', deduped.error);
  }

  async close(): Promise<void> {
    this.connection.closeSync();
    this.instance.closeSync();
    await this.parser.close();
  }
}
