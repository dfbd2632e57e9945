import { createHash, randomBytes } from 'node:crypto';

/**
 * Envelope encryption at rest. The master key (STRATA_MASTER_KEY or --key-file) never encrypts data itself:
 * it wraps data keys, each drawn from `crypto.randomBytes` and covering a bounded scope (a log segment, a
 * table's day partition, a view version), so that `strata keys rotate` re-wraps a few small keys instead of
 * rewriting data, and so that DuckDB's Parquet writer, whose GCM nonces are not from a secure generator here
 * (see shared/MACHINE.md), never puts many files under one key.
 */

/** One data key: 32 bytes for AES-256-GCM, known to DuckDB by `id` (a valid key name: `k_` and hex). */
export interface DataKey {
  readonly id: string;
  readonly key: Buffer;
}

/**
 * The data keys of one data directory. Strata without a master key has no keyring (`null` where one is taken)
 * and writes everything unencrypted.
 */
export interface Keyring {
  /**
   * The key for a scope, made on first use and saved (wrapped by the master key) before it is answered: the
   * same scope answers the same key in every thread and after a restart. A scope names what the key covers,
   * such as `log/clicks/0/00000000000000000001` or `lake/raw/clicks/dt=2026-11-25` or `views/page_minute/v=3`.
   */
  keyFor(scope: string): DataKey;
  /** A key by its id, for reading data that names its key. Throws when the keyring has no such key. */
  keyById(id: string): DataKey;
}

/** The id a key is known by: derived from its scope, so that a reader can find the key from the scope alone. */
export function dataKeyId(scope: string): string {
  return `k_${createHash('sha256').update(scope, 'utf8').digest('hex').slice(0, 32)}`;
}

/** A keyring held in memory only: for tests of the layers that encrypt, which need no master key on disk. */
export class MemoryKeyring implements Keyring {
  private readonly keys = new Map<string, DataKey>();

  keyFor(scope: string): DataKey {
    const id = dataKeyId(scope);
    let key = this.keys.get(id);
    if (!key) this.keys.set(id, (key = { id, key: randomBytes(32) }));
    return key;
  }

  keyById(id: string): DataKey {
    const key = this.keys.get(id);
    if (!key) throw new Error(`no data key ${id}`);
    return key;
  }
}
