import type { DuckDBConnection } from '@duckdb/node-api';
import { sqlString } from '../util/duckdb.js';
import type { FileGroup } from './lake-views.js';

/** Files whose schemas one `parquet_schema` call reads, so that the SQL text stays a bounded size. */
const SCHEMA_BATCH = 1_000;

/**
 * The top-level columns of each lake file, read from its Parquet footer once: files are never rewritten, so a
 * file's columns never change. Views group files by these columns, which holds whatever wrote a file (delivery,
 * an import, an older Strata), without trusting that a writer wrote exactly its schema version's columns.
 */
export class FileSchemas {
  /**
   * Path → the file's columns as `name\u0001type`, sorted and joined by `\0`: files are grouped by names and
   * types, since one read_parquet reads every file with the first file's types (a BIGINT file after an INTEGER
   * one would fail). The string is shared between files of equal columns.
   */
  private readonly known = new Map<string, string>();
  private readonly interned = new Map<string, string>();

  constructor(private readonly connection: DuckDBConnection) {}

  /** The files grouped by their columns; reads the footers of the files not seen before. */
  async group(paths: readonly string[]): Promise<FileGroup[]> {
    const unknown = paths.filter((path) => !this.known.has(path));
    for (let i = 0; i < unknown.length; i += SCHEMA_BATCH) await this.read(unknown.slice(i, i + SCHEMA_BATCH));
    const groups = new Map<string, string[]>();
    for (const path of paths) {
      const key = this.known.get(path)!;
      const group = groups.get(key);
      if (group) group.push(path);
      else groups.set(key, [path]);
    }
    return [...groups].map(([key, members]) => ({
      columns: new Set(key.split('\0').map((column) => column.split('\u0001')[0]!)),
      paths: members,
    }));
  }

  private async read(paths: readonly string[]): Promise<void> {
    const reader = await this.connection.runAndReadAll(
      `SELECT file_name, name, coalesce(num_children, 0)::INTEGER, coalesce(duckdb_type, '')
         FROM parquet_schema([${paths.map(sqlString).join(', ')}])
        ORDER BY file_name, column_id`,
    );
    // Each file's schema is a tree in depth-first order, its root first; only the root's children are columns.
    const byFile = new Map<string, [string, number, string][]>();
    for (const [file, name, children, type] of reader.getRows() as [string, string, number, string][]) {
      const rows = byFile.get(file);
      if (rows) rows.push([name, children, type]);
      else byFile.set(file, [[name, children, type]]);
    }
    for (const path of paths) {
      const rows = byFile.get(path);
      if (!rows) throw new Error(`no Parquet schema read for ${path}`);
      const names: string[] = [];
      let next = 1;
      const skip = (): void => {
        const [, children] = rows[next++]!;
        for (let k = 0; k < children; k++) skip();
      };
      for (let k = 0; k < rows[0]![1]; k++) {
        names.push(`${rows[next]![0]}\u0001${rows[next]![2]}`);
        skip();
      }
      const key = names.sort().join('\0');
      if (!this.interned.has(key)) this.interned.set(key, key);
      this.known.set(path, this.interned.get(key)!);
    }
  }
}
