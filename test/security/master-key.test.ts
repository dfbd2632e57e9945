import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { dataKeyId, loadMasterKey, parseMasterKey, readKeyFile, SqliteKeyring, verifyMasterKey } from '../../src/security/index.js';

describe('master key', () => {
  let dir: string;
  let dataDir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'strata-key-'));
    dataDir = join(dir, 'data');
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  async function keyFile(name: string, content: string | Buffer, mode = 0o600): Promise<string> {
    const path = join(dir, name);
    await writeFile(path, content);
    await chmod(path, mode);
    return path;
  }

  it('comes from STRATA_MASTER_KEY as base64 of exactly 32 bytes', async () => {
    const key = randomBytes(32);
    expect((await loadMasterKey({ dataDir, env: { STRATA_MASTER_KEY: key.toString('base64') } }))!.equals(key)).toBe(true);
    expect((await loadMasterKey({ dataDir, env: { STRATA_MASTER_KEY: ` ${key.toString('base64url')}\n` } }))!.equals(key)).toBe(true);
    expect(await loadMasterKey({ dataDir, env: {} })).toBeNull();
  });

  it('refuses bad base64, a wrong length and an empty variable, naming the variable', async () => {
    await expect(loadMasterKey({ dataDir, env: { STRATA_MASTER_KEY: 'not base64!' } })).rejects.toThrow(/STRATA_MASTER_KEY is not base64/);
    await expect(loadMasterKey({ dataDir, env: { STRATA_MASTER_KEY: randomBytes(16).toString('base64') } })).rejects.toThrow(
      /STRATA_MASTER_KEY decodes to 16 bytes; a master key is exactly 32 bytes/,
    );
    await expect(loadMasterKey({ dataDir, env: { STRATA_MASTER_KEY: '' } })).rejects.toThrow(/STRATA_MASTER_KEY is empty/);
    expect(() => parseMasterKey('abc', 'X')).toThrow(ConfigError);
  });

  it('comes from a key file holding base64 text or 32 raw bytes', async () => {
    const key = randomBytes(32);
    expect((await readKeyFile(await keyFile('text.key', `${key.toString('base64')}\n`), dataDir)).equals(key)).toBe(true);
    expect((await readKeyFile(await keyFile('raw.key', key), dataDir)).equals(key)).toBe(true);
    await expect(readKeyFile(await keyFile('short.key', randomBytes(31).toString('base64')), dataDir)).rejects.toThrow(/short\.key decodes to 31 bytes/);
  });

  it('refuses a key file group or others may read, naming the file and the fix', async () => {
    const path = await keyFile('open.key', randomBytes(32).toString('base64'), 0o644);
    await expect(readKeyFile(path, dataDir)).rejects.toThrow(`key file ${path} is accessible to group or others (mode 0644): chmod 600 ${path}`);
    await chmod(path, 0o640);
    await expect(readKeyFile(path, dataDir)).rejects.toThrow(/mode 0640/);
  });

  it('refuses a key file inside the data directory, even through a symlink or before the directory exists', async () => {
    await mkdir(join(dataDir, 'sub'), { recursive: true });
    const inside = join(dataDir, 'sub', 'master.key');
    await writeFile(inside, randomBytes(32).toString('base64'), { mode: 0o600 });
    await expect(readKeyFile(inside, dataDir)).rejects.toThrow(`key file ${inside} lies inside the data directory`);
    const link = join(dir, 'link.key');
    await symlink(inside, link);
    await expect(readKeyFile(link, dataDir)).rejects.toThrow(/lies inside the data directory/);
    // The data directory named through a symlink of its own.
    await symlink(dataDir, join(dir, 'data-link'));
    await expect(readKeyFile(inside, join(dir, 'data-link'))).rejects.toThrow(/lies inside the data directory/);
    // A data directory not made yet: the file beside it is fine.
    const beside = await keyFile('beside.key', randomBytes(32).toString('base64'));
    expect((await readKeyFile(beside, join(dir, 'new-data'))).length).toBe(32);
  });

  it('refuses a missing key file and both sources at once', async () => {
    await expect(readKeyFile(join(dir, 'missing.key'), dataDir)).rejects.toThrow(/key file .*missing\.key cannot be read/);
    const path = await keyFile('k.key', randomBytes(32).toString('base64'));
    await expect(loadMasterKey({ keyFile: path, dataDir, env: { STRATA_MASTER_KEY: randomBytes(32).toString('base64') } })).rejects.toThrow(
      /both STRATA_MASTER_KEY and --key-file are given/,
    );
  });
});

describe('keyring.db', () => {
  let dataDir: string;
  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'strata-keyring-'));
  });
  afterEach(async () => rm(dataDir, { recursive: true, force: true }));

  it('keeps data keys wrapped, answers the same key for a scope across connections, and re-wraps them on rotation', async () => {
    const master = randomBytes(32);
    const keyring = SqliteKeyring.create(dataDir, master);
    const other = SqliteKeyring.open(dataDir, master); // as the delivery thread does, in its own connection
    const a = keyring.keyFor('log/clicks/0/00000000000000000001');
    const b = other.keyFor('log/clicks/0/00000000000000000001');
    expect(a.id).toBe(dataKeyId('log/clicks/0/00000000000000000001'));
    expect(b.key.equals(a.key)).toBe(true);
    expect(other.keyById(a.id).key.equals(a.key)).toBe(true);
    expect(keyring.keyFor('lake/raw/clicks/dt=2026-11-25').key.equals(a.key)).toBe(false);
    expect(() => keyring.keyById('k_00')).toThrow(/no data key k_00/);
    expect(keyring.size).toBe(2);
    await other.close();
    await keyring.close();

    expect(() => verifyMasterKey(dataDir, randomBytes(32))).toThrow(/not the key of this data directory/);
    const next = randomBytes(32);
    expect(SqliteKeyring.rotate(dataDir, master, next)).toBe(2);
    expect(() => verifyMasterKey(dataDir, master)).toThrow(ConfigError);
    expect(() => SqliteKeyring.open(dataDir, master)).toThrow(ConfigError);
    const rotated = SqliteKeyring.open(dataDir, next);
    expect(rotated.keyById(a.id).key.equals(a.key)).toBe(true);
    await rotated.close();
  });
});
