import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { parseConfig, type ConfigInput, type StreamConfig, type TransformInput } from '../../src/config/index.js';
import { OFFSET_COLUMNS, readJsonColumns } from '../../src/lake/index.js';
import { compileTransform, type TransformPlan } from '../../src/transform/index.js';
import { sqlString } from '../../src/util/duckdb.js';
import { clicksConfig, removeDir, tempDir } from '../fixtures/strata.js';

/** The stream the transform tests clean: a clickstream with nullable and string fields to repair. */
export const CLICKS_SCHEMA = {
  event_id: 'string',
  ts: 'timestamp',
  user_id: 'string?',
  page: 'string?',
  country: 'string?',
  amount: 'double?',
  local_time: 'string?',
  qty: 'int?',
} as const;

export function clicksWith(transform: TransformInput, schema: Record<string, string> = CLICKS_SCHEMA): ConfigInput {
  return { streams: { clicks: { partitionKey: 'event_id', eventTime: 'ts', shards: 2, schema, transform } } };
}

/** The fixtures' clicks stream (clicksConfig) with one transform rule: de-duplication by event_id within `within`. */
export function dedupedClicks(overrides: Partial<ConfigInput>, shards: number, within: string): ConfigInput {
  const base = clicksConfig(overrides, shards);
  return { ...base, streams: { clicks: { ...base.streams!.clicks!, transform: { dedupe: { key: 'event_id', within } } } } };
}

export function clicksStream(transform: TransformInput, schema?: Record<string, string>): StreamConfig {
  return parseConfig(clicksWith(transform, schema)).streams.get('clicks')!;
}

export async function planFor(transform: TransformInput, schema?: Record<string, string>): Promise<TransformPlan> {
  const plan = await compileTransform(clicksStream(transform, schema));
  if (!plan) throw new Error('expected a transform plan');
  return plan;
}

/** A record as a test writes it; `__shard` and `__seq` are added in order when missing. */
export type TestRecord = Record<string, unknown>;

/**
 * Records staged as the layers stage them: NDJSON with offset columns, read by `read_json` with the stream's typed
 * columns (src/lake readJsonColumns), so the transform sees exactly what delivery and the speed layer give it.
 */
export class RecordTable {
  private constructor(
    private readonly dir: string,
    private readonly instance: DuckDBInstance,
    readonly db: DuckDBConnection,
  ) {}

  static async open(): Promise<RecordTable> {
    const dir = await tempDir('strata-transform-');
    const instance = await DuckDBInstance.create(':memory:', { threads: '1' });
    return new RecordTable(dir, instance, await instance.connect());
  }

  /** A source relation over these records, typed by the stream's schema. */
  async source(stream: StreamConfig, records: readonly TestRecord[], name = 'records'): Promise<string> {
    const path = join(this.dir, `${name}.ndjson`);
    const lines = records.map((record, i) => JSON.stringify({ __shard: 0, __seq: i + 1, ...record }));
    await writeFile(path, lines.join('\n') + '\n');
    return `SELECT * FROM read_json(${sqlString(path)}, format = 'newline_delimited', columns = ${readJsonColumns(stream.fields, OFFSET_COLUMNS)})`;
  }

  async query(sql: string): Promise<Record<string, unknown>[]> {
    return (await this.db.runAndReadAll(sql)).getRowObjectsJson() as Record<string, unknown>[];
  }

  async columns(sql: string): Promise<{ name: string; type: string }[]> {
    const reader = await this.db.runAndReadAll(`${sql} LIMIT 0`);
    const types = reader.columnTypes();
    return reader.columnNames().map((name, i) => ({ name, type: String(types[i]) }));
  }

  async close(): Promise<void> {
    this.db.closeSync();
    this.instance.closeSync();
    await removeDir(this.dir);
  }
}
