import { chmod, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { ListStreamsCommand } from '@aws-sdk/client-kinesis';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadServerKey, SecretSealer, serverKeyPath } from '../../src/security/index.js';
import { removeDir, startInProcess, tempDir, type RunningStrata } from '../fixtures/strata.js';
import { createToken, kinesisClient, kinesisConfig } from './support.js';

/** Every file under `dir`, recursively. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name));
}

describe("a token's secret is kept sealed under a server key outside the data directory", () => {
  let dir: string;
  let server: RunningStrata | null = null;
  let token: string;

  beforeAll(async () => {
    dir = await tempDir();
    server = await startInProcess(kinesisConfig(), dir);
    token = await createToken(server.url, 'sealed_one', ['reader']);
    const client = kinesisClient(server.url, 'sealed_one', token);
    try {
      // The token signs Kinesis requests: the server could open its sealed secret.
      expect((await client.send(new ListStreamsCommand({}))).StreamNames).toEqual(['clicks']);
    } finally {
      client.destroy();
    }
    await server.close();
    server = null;
  });
  afterAll(async () => {
    await server?.close();
    await removeDir(dir);
    await rm(serverKeyPath(dir), { force: true });
  });

  it('never writes the token in the clear anywhere in the data directory (catalog.db and its WAL included)', async () => {
    const files = await filesUnder(dir);
    expect(files.map((file) => relative(dir, file))).toContain('catalog.db');
    for (const file of files) {
      const bytes = await readFile(file);
      expect([relative(dir, file), bytes.includes(Buffer.from(token, 'utf8'))]).toEqual([relative(dir, file), false]);
    }
    const db = new Database(join(dir, 'catalog.db'), { readonly: true });
    try {
      const row = db.prepare('SELECT sealed_secret FROM tokens WHERE name = ?').get('sealed_one') as { sealed_secret: string };
      expect(row.sealed_secret).toMatch(/^v1\./);
      // It opens under the server key, for this token's name only.
      const sealer = new SecretSealer(await readFile(serverKeyPath(dir)));
      expect(sealer.open(row.sealed_secret, 'sealed_one')).toBe(token);
      expect(sealer.open(row.sealed_secret, 'another_name')).toBeNull();
    } finally {
      db.close();
    }
  });

  it('creates the server key file at first start beside the data directory, 32 bytes, mode 0600', async () => {
    const path = serverKeyPath(dir);
    expect(path).toBe(`${dir}.server-key`);
    expect(relative(dir, path).startsWith('..')).toBe(true);
    const info = await stat(path);
    expect(info.mode & 0o777).toBe(0o600);
    expect(info.size).toBe(32);
    // The same key at the next start.
    expect(await loadServerKey({ masterKey: null, dataDir: dir })).toEqual(await readFile(path));
  });

  it('refuses a key file others may read, and uses the master key when one is given', async () => {
    const other = await tempDir();
    try {
      const path = serverKeyPath(other);
      await writeFile(path, Buffer.alloc(32, 7));
      await chmod(path, 0o644);
      await expect(loadServerKey({ masterKey: null, dataDir: other })).rejects.toThrow(/chmod 600/);
      const master = Buffer.alloc(32, 9);
      expect(await loadServerKey({ masterKey: master, dataDir: other })).toBe(master);
      await expect(loadServerKey({ masterKey: Buffer.alloc(16), dataDir: other })).rejects.toThrow(/32/);
      await rm(path);
    } finally {
      await removeDir(other);
    }
  });
});
