import type { DerivedTable } from '../sql/index.js';
import { quoteIdent } from '../util/duckdb.js';
import type { RecordSource } from './record-source.js';

/** The SQL table names of a stream's clean and quarantined records. */
export const cleanTableName = (stream: string): string => `${stream}__clean`;
export const quarantineTableName = (stream: string): string => `${stream}__quarantine`;

/**
 * For each stream with a transform, `<stream>__clean` (the records its views read, de-duplicated) and `<stream>__quarantine`
 * (the records the rules refused, raw values and `__quarantine_reason`) as SQL tables. Both are the rules applied
 * to the stream's raw table at query time, so they cover what the lake holds (delivered records) and change
 * with the rules; their state is the transform version.
 */
export function transformTables(sources: ReadonlyMap<string, RecordSource>): DerivedTable[] {
  return [...sources.values()].flatMap((source) => {
    const raw = `SELECT * FROM ${quoteIdent(source.stream)}`;
    const quarantine = source.quarantineSql(raw);
    if (source.transformVersion === null || quarantine === null) return [];
    return [
      // Clean as the views read them: duplicates left out too.
      { name: cleanTableName(source.stream), state: source.transformVersion, sql: async () => source.dedupedSql(raw) },
      { name: quarantineTableName(source.stream), state: source.transformVersion, sql: async () => quarantine },
    ];
  });
}
