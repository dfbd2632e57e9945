import { stat } from 'node:fs/promises';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import type { NewChunkFile } from '../catalog/index.js';
import type { FieldSpec } from '../config/index.js';
import { DUCKDB_TYPES, quoteIdent, sqlString } from '../util/duckdb.js';
import type { ObjectStore } from './types.js';

/** The partition of rows whose event time is missing: kept, never dropped. */
export const UNKNOWN_PARTITION = '__unknown__';

/** What one chunk write needs to know. */
export interface ChunkSpec {
  /** The object-key prefix of the table, e.g. `raw/clicks`. */
  readonly prefix: string;
  /** The file name each partition's file gets (without `.parquet`), e.g. `0-1-5000`: the same on a rewrite. */
  readonly stem: string;
  /** The timestamp column whose UTC day names the partition, or null to put every row in `__unknown__`. */
  readonly eventTime: string | null;
  /**
   * A DuckDB query yielding the chunk's rows with their final columns and types; it may read staged files.
   * The writer partitions its result by event-time day.
   */
  readonly source: string;
}

/**
 * Writes chunks of the master dataset: one zstd Parquet file per event-time partition, each staged, synced
 * and published under `<prefix>/dt=YYYY-MM-DD/<stem>.parquet`. It owns a DuckDB instance of its own (the
 * engine for ad-hoc SQL is locked down to read-only; this one writes). Registration in the catalog is the
 * caller's: a file the catalog does not list does not exist, and recovery removes it.
 */
export class ChunkWriter {
  private sequence = 0;

  private constructor(
    private readonly store: ObjectStore,
    private readonly instance: DuckDBInstance,
  ) {}

  static async open(store: ObjectStore, options: { memoryLimit?: string; threads?: number } = {}): Promise<ChunkWriter> {
    const instance = await DuckDBInstance.create(':memory:', {
      memory_limit: options.memoryLimit ?? '2GB',
      threads: String(options.threads ?? 1),
    });
    // The lake's timestamps are UTC: a source text without an offset (a CSV import) is read as UTC, whatever
    // the machine's time zone. ICU loads on first use, so this cannot be a creation option.
    const connection = await instance.connect();
    await connection.run(`SET GLOBAL TimeZone = 'UTC'`);
    connection.closeSync();
    return new ChunkWriter(store, instance);
  }

  /** Writes the rows of `spec.source` as partition files and answers them, ready to register. */
  async write(spec: ChunkSpec): Promise<NewChunkFile[]> {
    const connection = await this.instance.connect();
    const table = `chunk_${++this.sequence}`;
    try {
      const day = spec.eventTime === null ? 'NULL' : `strftime(${quoteIdent(spec.eventTime)}, '%Y-%m-%d')`;
      await connection.run(
        `CREATE TEMP TABLE ${table} AS SELECT *, coalesce(${day}, '${UNKNOWN_PARTITION}') AS __partition FROM (${spec.source})`,
      );
      const time = spec.eventTime === null ? 'NULL' : quoteIdent(spec.eventTime);
      const partitions = await readRows(
        connection,
        `SELECT __partition, count(*)::BIGINT, strftime(min(${time}), '%Y-%m-%dT%H:%M:%S.%fZ'), strftime(max(${time}), '%Y-%m-%dT%H:%M:%S.%fZ')
           FROM ${table} GROUP BY __partition ORDER BY __partition`,
      );
      const files: NewChunkFile[] = [];
      for (const [partition, rows, minTime, maxTime] of partitions) {
        const staged = this.store.stagingPath(spec.stem);
        await connection.run(
          `COPY (SELECT * EXCLUDE (__partition) FROM ${table} WHERE __partition = ${sqlString(String(partition))})
             TO ${sqlString(staged)} (FORMAT parquet, COMPRESSION zstd)`,
        );
        const key = `${spec.prefix}/dt=${String(partition)}/${spec.stem}.parquet`;
        const bytes = (await stat(staged)).size;
        await this.store.publish(staged, key);
        files.push({
          partition: String(partition),
          key,
          rows: Number(rows),
          bytes,
          minTime: minTime === null ? null : String(minTime),
          maxTime: maxTime === null ? null : String(maxTime),
        });
      }
      return files;
    } finally {
      await connection.run(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
      connection.closeSync();
    }
  }

  async close(): Promise<void> {
    this.instance.closeSync();
  }
}

async function readRows(connection: DuckDBConnection, sql: string): Promise<unknown[][]> {
  const reader = await connection.runAndReadAll(sql);
  return reader.getRows();
}

/**
 * The DuckDB `columns` struct for `read_json` over records of this schema, so that JSON values are read with
 * their declared types (a timestamp text becomes TIMESTAMP) and unknown keys are ignored.
 */
export function readJsonColumns(fields: readonly FieldSpec[], extra: Record<string, string> = {}): string {
  const entries = [
    ...Object.entries(extra).map(([name, type]) => `${quoteIdent(name)}: ${sqlString(type)}`),
    ...fields.map((field) => `${quoteIdent(field.name)}: ${sqlString(DUCKDB_TYPES[field.type])}`),
  ];
  return `{${entries.join(', ')}}`;
}
