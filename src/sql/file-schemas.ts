import type { DuckDBConnection } from '@duckdb/node-api';
import { isEncryptedParquet, readEncryption, type ParquetFile, type ParquetKeys } from '../lake/parquet-encryption.js';
import { sqlString } from '../util/duckdb.js';
import type { FileGroup } from './lake-views.js';

/** Files whose schemas one `parquet_schema` call reads, so that the SQL text stays a bounded size. */
const SCHEMA_BATCH = 1_000;
/**
 * Encrypted files whose schemas one query reads. `parquet_schema` cannot read an encrypted footer (it takes no
 * `encryption_config`), so each such file is a `DESCRIBE` of its own `read_parquet`, all in one UNION ALL:
 * ≈ 1 ms a file here, against ≈ 0.5 ms with parquet_schema; once per file, like the plain ones.
 */
const ENCRYPTED_SCHEMA_BATCH = 200;

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
  /** Path → the key an encrypted file is read with; plain files are not listed. */
  private readonly encrypted = new Map<string, string>();

  /** `keys`: the data keys of the connection's instance, for encrypted files (see src/lake/parquet-encryption.ts). */
  constructor(
    private readonly connection: DuckDBConnection,
    private readonly keys: ParquetKeys | null = null,
  ) {}

  /**
   * The files grouped by their columns and by the key they are encrypted under (one `read_parquet` reads one key);
   * reads the footers of the files not seen before and registers their keys with the instance.
   */
  async group(files: readonly ParquetFile[]): Promise<FileGroup[]> {
    const unknown = files.filter((file) => !this.known.has(file.path));
    const plain: string[] = [];
    const encrypted: ParquetFile[] = [];
    for (const file of unknown) {
      // A file of a scope that has a key may still predate the master key: its magic bytes tell.
      if (file.keyId !== null && this.keys !== null && (await isEncryptedParquet(file.path))) encrypted.push(file);
      else plain.push(file.path);
    }
    for (let i = 0; i < plain.length; i += SCHEMA_BATCH) await this.read(plain.slice(i, i + SCHEMA_BATCH));
    for (let i = 0; i < encrypted.length; i += ENCRYPTED_SCHEMA_BATCH) await this.readEncrypted(encrypted.slice(i, i + ENCRYPTED_SCHEMA_BATCH));
    const groups = new Map<string, { key: string; keyId: string | null; paths: string[] }>();
    for (const { path } of files) {
      const keyId = this.encrypted.get(path) ?? null;
      const key = `${keyId ?? ''}\n${this.known.get(path)!}`;
      const group = groups.get(key);
      if (group) group.paths.push(path);
      else groups.set(key, { key: this.known.get(path)!, keyId, paths: [path] });
    }
    return [...groups.values()].map(({ key, keyId, paths }) => ({
      columns: new Set(key.split('\0').map((column) => column.split('\u0001')[0]!)),
      paths,
      keyId,
    }));
  }

  /** Schemas of encrypted files, each read with its key (registered first). */
  private async readEncrypted(files: readonly ParquetFile[]): Promise<void> {
    await this.keys!.registerIds(this.connection, files.map((file) => file.keyId!));
    const reader = await this.connection.runAndReadAll(
      files
        .map(
          (file, i) =>
            `SELECT ${i} AS file, column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet(${sqlString(file.path)}${readEncryption(file.keyId)}))`,
        )
        .join('\nUNION ALL\n'),
    );
    const byFile = new Map<number, string[]>();
    for (const [file, name, type] of reader.getRows() as [number, string, string][]) {
      const names = byFile.get(file);
      if (names) names.push(`${name}\u0001${type}`);
      else byFile.set(file, [`${name}\u0001${type}`]);
    }
    files.forEach((file, i) => {
      const names = byFile.get(i);
      if (!names) throw new Error(`no Parquet schema read for ${file.path}`);
      this.remember(file.path, names);
      this.encrypted.set(file.path, file.keyId!);
    });
  }

  private remember(path: string, names: string[]): void {
    const key = names.sort().join('\0');
    if (!this.interned.has(key)) this.interned.set(key, key);
    this.known.set(path, this.interned.get(key)!);
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
      this.remember(path, names);
    }
  }
}
