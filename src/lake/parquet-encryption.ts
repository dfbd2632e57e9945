import { open } from 'node:fs/promises';
import type { DuckDBConnection } from '@duckdb/node-api';
import { dataKeyId, type DataKey, type Keyring } from '../security/keyring.js';
import { sqlString } from '../util/duckdb.js';

/**
 * Encrypted Parquet at rest (issue 8): how every DuckDB of Strata writes and reads the lake's Parquet files when
 * a keyring is given. Without one (`null`) nothing here changes a byte of what is written or read.
 *
 * - Keys. Each file is encrypted (AES-256-GCM, DuckDB's `ENCRYPTION_CONFIG {footer_key}`) under the data key of
 *   its scope, derived from the file's object key alone by {@link parquetKeyScope}: a reader finds the key from
 *   the path, with no catalog column, through {@link dataKeyId} and {@link Keyring.keyById}. Scopes are per
 *   table and event-time partition, which bounds the files under one key: DuckDB's writer here draws its GCM
 *   nonces from a generator that is not cryptographically secure (shared/MACHINE.md), so a key must never
 *   cover an unbounded stream of files.
 * - Reads. DuckDB takes one footer key per `read_parquet` call, so a table over many partitions is a UNION ALL of
 *   one `read_parquet` per key (src/sql/lake-views.ts, src/batch/partials.ts). A file written before the master
 *   key was set stays plain and is read without `encryption_config` (DuckDB refuses a plain file read with one):
 *   lake files are told apart by their magic bytes (`PARE` for an encrypted footer, `PAR1` for plain), view files
 *   by whether their scope has a key (a version's partition is written whole by one run, in one mode).
 * - Instances. Keys are registered per DuckDB instance (`PRAGMA add_parquet_key`), once each ({@link ParquetKeys}).
 *   Writing needs `force_mbedtls_unsafe` here (no httpfs/OpenSSL); the same instances set `temp_file_encryption`,
 *   so whatever DuckDB spills past its memory limit is encrypted too, under a key it draws per instance and keeps
 *   only in memory (DuckDB 1.5; measured here, spilling costs ≈ 3x the plain spill's time, and only queries that
 *   spill pay it). See {@link encryptionSettings}.
 */

/** The folder of a view's partial files: `views/<view>/v=<n>/<relation>/dt=<partition>/<file>`. */
const VIEW_FILE = /^(views\/[^/]+\/v=[^/]+)\/[^/]+\/(dt=[^/]+)\/[^/]+$/;

/**
 * The scope of the data key a lake object is encrypted under.
 *
 * - Chunks of the master dataset, `<table prefix>/dt=<day>/<file>` (`raw/clicks/dt=2026-11-25/0-1-5000.parquet`):
 *   `lake/<table prefix>/dt=<day>`. Every chunk of one table's day partition shares the key, so a partition is
 *   read with one `read_parquet`, and the files under one key are bounded by what one day receives.
 * - View partials, `views/<view>/v=<n>/<relation>/dt=<partition>/<file>`: `views/<view>/v=<n>/dt=<partition>`.
 *   The relations' files of one partition of one version share it: one file per relation (a run writes a
 *   partition's `part` or its `delta`, never both), re-written only by a retry of a failed run.
 * - Anything else: `lake/<folder of the object>`.
 */
export function parquetKeyScope(objectKey: string): string {
  const view = VIEW_FILE.exec(objectKey);
  if (view) return `${view[1]}/${view[2]}`;
  const slash = objectKey.lastIndexOf('/');
  return `lake/${slash < 0 ? '' : objectKey.slice(0, slash)}`;
}

/**
 * DuckDB instance options for a keyring: writing encrypted Parquet needs `force_mbedtls_unsafe` here, and
 * `temp_file_encryption` encrypts what the instance spills (its `temp_directory`, or `.tmp` by default for an
 * in-memory database). Both are creation options, set before any temp file exists. Empty without a keyring.
 */
export function encryptionSettings(keyring: Keyring | null | undefined): Record<string, string> {
  return keyring ? { force_mbedtls_unsafe: 'true', temp_file_encryption: 'true' } : {};
}

/** The COPY option that encrypts a Parquet file under `key` (to follow `FORMAT parquet, ...`); '' for none. */
export function copyEncryption(key: DataKey | null): string {
  return key === null ? '' : `, ENCRYPTION_CONFIG {footer_key: ${sqlString(key.id)}}`;
}

/** The `read_parquet` parameter that reads files encrypted under the key `keyId` (to follow other parameters). */
export function readEncryption(keyId: string | null): string {
  return keyId === null ? '' : `, encryption_config = {footer_key: ${sqlString(keyId)}}`;
}

/**
 * `read_parquet` over lake objects, one call per data key (DuckDB takes one footer key per call), the branches
 * joined by column name; null for no objects. `options` follow the file list inside each call
 * (`, hive_partitioning = false`), `select` is each branch's select list. Never put `union_by_name` in `options`:
 * DuckDB 1.5 fails an encrypted read with it ("Attempted to dereference shared_ptr that is NULL") and invalidates
 * the whole instance.
 */
export function readParquetByKey(
  keys: ParquetKeys,
  objects: readonly { readonly objectKey: string; readonly location: string }[],
  options = '',
  select = '*',
): string | null {
  const byKey = new Map<string | null, string[]>();
  for (const { objectKey, location } of objects) {
    const keyId = keys.keyIdOf(objectKey);
    const paths = byKey.get(keyId);
    if (paths) paths.push(sqlString(location));
    else byKey.set(keyId, [sqlString(location)]);
  }
  if (byKey.size === 0) return null;
  return [...byKey]
    .map(([keyId, paths]) => `SELECT ${select} FROM read_parquet([${paths.join(', ')}]${options}${readEncryption(keyId)})`)
    .join('\nUNION ALL BY NAME\n');
}

/** A Parquet file to read: where it is, and the key its scope has when the keyring holds one (else null). */
export interface ParquetFile {
  readonly path: string;
  /**
   * The id of its scope's data key, or null when no key exists for the scope (the file is plain). A lake
   * file with a key id may still be plain (written before the master key was set): readers check its magic.
   */
  readonly keyId: string | null;
}

/** Whether a local Parquet file has an encrypted footer: DuckDB's encrypted files begin and end with `PARE`. */
export async function isEncryptedParquet(path: string): Promise<boolean> {
  const handle = await open(path, 'r');
  try {
    const magic = Buffer.alloc(4);
    const { bytesRead } = await handle.read(magic, 0, 4, 0);
    return bytesRead === 4 && magic.toString('latin1') === 'PARE';
  } finally {
    await handle.close();
  }
}

/** Key names in SQL, as `footer_key: 'k_<hex>'` (see {@link copyEncryption} and {@link readEncryption}). */
const NAMED_KEY = /footer_key: '(k_[0-9a-f]+)'/g;

/**
 * The data keys one DuckDB instance knows. DuckDB keeps `PRAGMA add_parquet_key` per instance (every connection
 * of it sees the key), so each instance that reads or writes encrypted Parquet has one of these, which registers
 * each key once. Without a keyring it does nothing, and nothing it answers asks for encryption.
 */
export class ParquetKeys {
  private readonly registered = new Set<string>();

  constructor(readonly keyring: Keyring | null) {}

  /** Whether files are written encrypted. */
  get enabled(): boolean {
    return this.keyring !== null;
  }

  /** The key to write the object `objectKey` under (made on first use), registered; null without a keyring. */
  async forWrite(connection: DuckDBConnection, objectKey: string): Promise<DataKey | null> {
    if (this.keyring === null) return null;
    const key = this.keyring.keyFor(parquetKeyScope(objectKey));
    await this.register(connection, [key]);
    return key;
  }

  /** The id of the key of `objectKey`'s scope if the keyring holds one; null when it holds none (a plain file). */
  keyIdOf(objectKey: string): string | null {
    if (this.keyring === null) return null;
    const id = dataKeyId(parquetKeyScope(objectKey));
    try {
      return this.keyring.keyById(id).id;
    } catch {
      return null;
    }
  }

  /** The object as a file to read: its location and its scope's key id. */
  file(location: string, objectKey: string): ParquetFile {
    return { path: location, keyId: this.keyIdOf(objectKey) };
  }

  /** Makes the keys known to the instance of `connection`. */
  async register(connection: DuckDBConnection, keys: Iterable<DataKey>): Promise<void> {
    for (const key of keys) {
      if (this.registered.has(key.id)) continue;
      await connection.run(`PRAGMA add_parquet_key(${sqlString(key.id)}, ${sqlString(key.key.toString('base64'))})`);
      this.registered.add(key.id);
    }
  }

  /**
   * Registers every key that `sql` names in an encryption config, found in `extra` first (keys of no keyring,
   * such as the speed layer's export keys), then in the keyring. SQL built elsewhere (a derived table's, a
   * version's partials) names its keys this way, so whoever runs it registers them without being told.
   */
  async registerNamed(connection: DuckDBConnection, sql: string, extra: Pick<Keyring, 'keyById'> | null = null): Promise<void> {
    await this.registerIds(connection, [...sql.matchAll(NAMED_KEY)].map((match) => match[1]!), extra);
  }

  /** Registers the keys of these ids, found in `extra` first, then in the keyring; throws for an unknown one. */
  async registerIds(connection: DuckDBConnection, ids: Iterable<string>, extra: Pick<Keyring, 'keyById'> | null = null): Promise<void> {
    const keys = new Map<string, DataKey>();
    for (const id of ids) {
      if (this.registered.has(id) || keys.has(id)) continue;
      keys.set(id, lookup(extra, id) ?? lookup(this.keyring, id) ?? missing(id));
    }
    await this.register(connection, keys.values());
  }
}

function lookup(keyring: Pick<Keyring, 'keyById'> | null, id: string): DataKey | null {
  if (keyring === null) return null;
  try {
    return keyring.keyById(id);
  } catch {
    return null;
  }
}

function missing(id: string): never {
  throw new Error(`encrypted Parquet names the data key ${id}, which the keyring does not hold (was the data directory opened with another master key?)`);
}
