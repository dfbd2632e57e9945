/**
 * The object-storage role (the S3 landing bucket in the AWS design): immutable objects under keys such as
 * `raw/clicks/dt=2026-11-25/0-1-5000.parquet`. Layers touch the lake's files only through {@link ObjectStore},
 * so that S3 can replace the local directory.
 */
export interface ObjectStore {
  /**
   * A fresh local path where a writer (DuckDB, an encoder) may create an object's bytes before publishing
   * them. Staging paths never end in `.parquet` and lie outside every table folder, so an engine reading the
   * folders directly never sees a half-written file.
   */
  stagingPath(hint: string): string;
  /** Makes a staged file the object `key`: durable first (fsync), then visible at once (rename). */
  publish(stagingPath: string, key: string): Promise<void>;
  /** Writes `data` as the object `key`, atomically and durably. */
  put(key: string, data: Buffer): Promise<void>;
  get(key: string): Promise<Buffer>;
  /** Every key under `prefix`, sorted. Staging files are never listed. */
  list(prefix: string): Promise<string[]>;
  /** Removes an object; removing a missing one is not an error. */
  delete(key: string): Promise<void>;
  /** Where a reader on this machine (DuckDB) finds the object: a local path, or a URL for remote stores. */
  location(key: string): string;
  /** Removes whatever staging files a crash left behind. */
  clearStaging(): Promise<void>;
}
