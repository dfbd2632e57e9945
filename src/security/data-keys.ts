import { closeSync, existsSync, fsyncSync, openSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ConfigError } from '../errors.js';
import { dataKeyId, type DataKey, type Keyring } from './keyring.js';
import { MASTER_KEY_BYTES } from './master-key.js';

/**
 * The persistent keyring of an encrypted data directory: `<data>/keyring.db`, a small SQLite file of its own
 * holding every data key wrapped (AES-256-GCM under the master key, the key's id as associated data) and a key
 * check (an HMAC under the master key) that tells a wrong master key before anything else is opened.
 *
 * Its presence is what makes a data directory encrypted. It is made whole or not at all (written beside, then
 * renamed), so a crash while making it leaves a directory that is plainly new.
 *
 * The journal is SQLite's rollback journal, not WAL: the start-up check opens the file read-only, and a read-only
 * WAL connection leaves `-wal` and `-shm` files behind, while a refused start must change nothing. Writes are
 * rare (one per new log segment or partition), so WAL's concurrency buys nothing here. Each thread that encrypts
 * (the main one, the delivery worker) opens its own connection; `busy_timeout` lets them take turns.
 */
export const KEYRING_FILE = 'keyring.db';
const CHECK_LABEL = 'strata keyring check v1\0';
const WRAP_VERSION = 1;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** A data key is 32 bytes: AES-256. */
const DATA_KEY_BYTES = 32;
/** Files of a data directory that do not count as data: a stale lock, a keyring never finished. */
const NOT_DATA = new Set(['strata.lock', `${KEYRING_FILE}.new`]);

const SCHEMA = `
  CREATE TABLE keyring (name TEXT PRIMARY KEY, value BLOB NOT NULL);
  CREATE TABLE data_keys (id TEXT PRIMARY KEY, scope TEXT NOT NULL, wrapped BLOB NOT NULL, created_at INTEGER NOT NULL);
`;

/** The keyring file of a data directory. */
export function keyringPath(dataDir: string): string {
  return join(dataDir, KEYRING_FILE);
}

/** Whether a data directory is encrypted: it has a keyring. */
export function isEncryptedDataDir(dataDir: string): boolean {
  return existsSync(keyringPath(dataDir));
}

/**
 * The start-up rules of encryption at rest, checked before anything in `dataDir` is created or opened for
 * writing, so that a refused start changes nothing:
 * - an encrypted directory without a master key, or with one that fails its key check, is refused;
 * - an unencrypted directory that already holds data is refused with a master key (it would mix plain and
 *   encrypted data); a new or empty one becomes encrypted;
 * - without a master key an unencrypted directory runs unencrypted.
 * Answers what Strata should do: open the keyring, make one, or run plain.
 */
export function checkDataDirEncryption(dataDir: string, masterKey: Buffer | null): 'open' | 'create' | 'plain' {
  if (isEncryptedDataDir(dataDir)) {
    if (masterKey === null) {
      throw new ConfigError(`data directory ${dataDir} is encrypted: set STRATA_MASTER_KEY or pass --key-file with its master key`);
    }
    verifyMasterKey(dataDir, masterKey);
    return 'open';
  }
  if (masterKey === null) return 'plain';
  const entries = existsSync(dataDir) ? readdirSync(dataDir).filter((name) => !NOT_DATA.has(name)) : [];
  if (entries.length > 0) {
    throw new ConfigError(
      `data directory ${dataDir} holds unencrypted data and a master key was given: encrypting from now on would mix ` +
        'plain and encrypted data. Start without a key, or give the key to a new, empty data directory',
    );
  }
  return 'create';
}

/**
 * Checks `masterKey` against the key check of the keyring in `dataDir`, opening it read-only (nothing is
 * written). Throws {@link ConfigError} when it is not the key the keyring was made or last rotated with.
 */
export function verifyMasterKey(dataDir: string, masterKey: Buffer): void {
  const path = keyringPath(dataDir);
  // A hot journal (a crash in the middle of a keyring write) needs a writable connection to roll it back.
  const readonly = !existsSync(`${path}-journal`);
  const db = new Database(path, { readonly, fileMustExist: true });
  try {
    if (!readonly) configure(db);
    checkKey(db, masterKey, path);
  } finally {
    db.close();
  }
}

function configure(db: Database.Database): void {
  db.pragma('busy_timeout = 10000');
  db.pragma('journal_mode = DELETE');
  db.pragma('synchronous = FULL');
}

function keyCheck(masterKey: Buffer, keyringId: Buffer): Buffer {
  return createHmac('sha256', masterKey).update(CHECK_LABEL).update(keyringId).digest();
}

function checkKey(db: Database.Database, masterKey: Buffer, path: string): void {
  if (masterKey.length !== MASTER_KEY_BYTES) throw new ConfigError(`a master key is ${MASTER_KEY_BYTES} bytes, not ${masterKey.length}`);
  let rows: { name: string; value: Buffer }[];
  try {
    rows = db.prepare('SELECT name, value FROM keyring').all() as { name: string; value: Buffer }[];
  } catch (error) {
    throw new ConfigError(`keyring ${path} cannot be read: ${(error as Error).message}`);
  }
  const values = new Map(rows.map((row) => [row.name, row.value]));
  const id = values.get('id');
  const check = values.get('check');
  if (!id || !check) throw new ConfigError(`keyring ${path} has no key check: it is damaged`);
  const expected = keyCheck(masterKey, id);
  if (check.length !== expected.length || !timingSafeEqual(check, expected)) {
    throw new ConfigError(
      `the master key given is not the key of this data directory (${path} was made, or last rotated, with another): ` +
        'Strata refuses to start and has changed nothing',
    );
  }
}

function wrap(masterKey: Buffer, id: string, key: Buffer): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', masterKey, nonce);
  cipher.setAAD(Buffer.from(id, 'utf8'));
  const sealed = Buffer.concat([cipher.update(key), cipher.final()]);
  return Buffer.concat([Buffer.from([WRAP_VERSION]), nonce, sealed, cipher.getAuthTag()]);
}

function unwrap(masterKey: Buffer, id: string, wrapped: Buffer, path: string): Buffer {
  const fail = () => new Error(`data key ${id} in ${path} does not unwrap under the master key: the keyring is damaged or altered`);
  if (wrapped.length !== 1 + NONCE_BYTES + DATA_KEY_BYTES + TAG_BYTES || wrapped[0] !== WRAP_VERSION) throw fail();
  const decipher = createDecipheriv('aes-256-gcm', masterKey, wrapped.subarray(1, 1 + NONCE_BYTES));
  decipher.setAAD(Buffer.from(id, 'utf8'));
  decipher.setAuthTag(wrapped.subarray(wrapped.length - TAG_BYTES));
  try {
    return Buffer.concat([decipher.update(wrapped.subarray(1 + NONCE_BYTES, wrapped.length - TAG_BYTES)), decipher.final()]);
  } catch {
    throw fail();
  }
}

/**
 * The {@link Keyring} of an encrypted data directory, in `<data>/keyring.db`. A new data key is drawn from
 * `crypto.randomBytes`, saved wrapped (synchronously, durably) and only then answered; two threads asking for
 * the same new scope at once both get the one key that was saved first. Unwrapped keys are kept in memory.
 */
export class SqliteKeyring implements Keyring {
  private readonly cache = new Map<string, DataKey>();
  private readonly selectKey: Database.Statement<[string], { scope: string; wrapped: Buffer }>;
  private readonly insertKey: Database.Statement<[string, string, Buffer, number]>;

  private constructor(
    private readonly db: Database.Database,
    private readonly masterKey: Buffer,
    private readonly path: string,
  ) {
    this.selectKey = db.prepare('SELECT scope, wrapped FROM data_keys WHERE id = ?');
    this.insertKey = db.prepare('INSERT OR IGNORE INTO data_keys (id, scope, wrapped, created_at) VALUES (?, ?, ?, ?)');
  }

  /** Opens the keyring of an encrypted data directory; throws {@link ConfigError} when the master key is not its key. */
  static open(dataDir: string, masterKey: Buffer): SqliteKeyring {
    const path = keyringPath(dataDir);
    const db = new Database(path, { fileMustExist: true });
    try {
      configure(db);
      checkKey(db, masterKey, path);
    } catch (error) {
      db.close();
      throw error;
    }
    return new SqliteKeyring(db, Buffer.from(masterKey), path);
  }

  /**
   * Makes the keyring of a new data directory (which must exist) under `masterKey`, and opens it. It is written
   * as `keyring.db.new`, synced, then renamed: the directory is encrypted once the rename is durable, never half.
   */
  static create(dataDir: string, masterKey: Buffer): SqliteKeyring {
    if (masterKey.length !== MASTER_KEY_BYTES) throw new ConfigError(`a master key is ${MASTER_KEY_BYTES} bytes, not ${masterKey.length}`);
    const path = keyringPath(dataDir);
    if (existsSync(path)) throw new ConfigError(`${path} exists already: data directory ${dataDir} is encrypted`);
    const draft = `${path}.new`;
    rmSync(draft, { force: true });
    rmSync(`${draft}-journal`, { force: true });
    const db = new Database(draft);
    try {
      configure(db);
      const id = randomBytes(16);
      db.transaction(() => {
        db.exec(SCHEMA);
        const insert = db.prepare('INSERT INTO keyring (name, value) VALUES (?, ?)');
        insert.run('id', id);
        insert.run('check', keyCheck(masterKey, id));
      })();
    } finally {
      db.close();
    }
    renameSync(draft, path);
    syncDirectory(dataDir);
    return SqliteKeyring.open(dataDir, masterKey);
  }

  /**
   * Re-wraps every data key and the key check of the keyring in `dataDir` from `oldKey` to `newKey`, in one
   * transaction: the data itself is not touched, since it is encrypted under the data keys, which do not change.
   * Strata must be stopped (the caller holds the data directory's lock). Answers how many data keys were re-wrapped.
   */
  static rotate(dataDir: string, oldKey: Buffer, newKey: Buffer): number {
    if (newKey.length !== MASTER_KEY_BYTES) throw new ConfigError(`a master key is ${MASTER_KEY_BYTES} bytes, not ${newKey.length}`);
    const path = keyringPath(dataDir);
    if (!existsSync(path)) throw new ConfigError(`data directory ${dataDir} is not encrypted: it has no ${KEYRING_FILE}`);
    const db = new Database(path, { fileMustExist: true });
    try {
      configure(db);
      checkKey(db, oldKey, path);
      return db.transaction(() => {
        const rows = db.prepare('SELECT id, wrapped FROM data_keys').all() as { id: string; wrapped: Buffer }[];
        const update = db.prepare('UPDATE data_keys SET wrapped = ? WHERE id = ?');
        for (const row of rows) update.run(wrap(newKey, row.id, unwrap(oldKey, row.id, row.wrapped, path)), row.id);
        const id = (db.prepare("SELECT value FROM keyring WHERE name = 'id'").get() as { value: Buffer }).value;
        db.prepare("UPDATE keyring SET value = ? WHERE name = 'check'").run(keyCheck(newKey, id));
        return rows.length;
      })();
    } finally {
      db.close();
    }
  }

  keyFor(scope: string): DataKey {
    const id = dataKeyId(scope);
    const cached = this.cache.get(id);
    if (cached) return cached;
    let row = this.selectKey.get(id);
    if (!row) {
      // Saved before it is answered; if another thread saved one first, that one is the key.
      this.insertKey.run(id, scope, wrap(this.masterKey, id, randomBytes(DATA_KEY_BYTES)), Date.now());
      row = this.selectKey.get(id)!;
    }
    if (row.scope !== scope) throw new Error(`data key ${id} belongs to scope ${row.scope}, not ${scope}`);
    return this.remember(id, row.wrapped);
  }

  keyById(id: string): DataKey {
    const cached = this.cache.get(id);
    if (cached) return cached;
    const row = this.selectKey.get(id);
    if (!row) throw new Error(`no data key ${id} in ${this.path}`);
    return this.remember(id, row.wrapped);
  }

  private remember(id: string, wrapped: Buffer): DataKey {
    const key: DataKey = { id, key: unwrap(this.masterKey, id, wrapped, this.path) };
    this.cache.set(id, key);
    return key;
  }

  /** How many data keys the keyring holds. */
  get size(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM data_keys').get() as { n: number }).n;
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
    // The copy of the master key is wiped; data keys are only dropped, since a part closing after this one
    // may still hold one, and a zeroed key would encrypt silently.
    this.masterKey.fill(0);
    this.cache.clear();
  }
}

function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
