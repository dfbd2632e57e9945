import { randomBytes } from 'node:crypto';
import { chmod, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../../src/cli/index.js';
import { rotateMasterKey } from '../../src/cli/keys-command.js';
import { parseConfig } from '../../src/config/index.js';
import { ConfigError } from '../../src/errors.js';
import { Strata } from '../../src/strata.js';
import { asSeq } from '../../src/stream/index.js';
import { clicksConfig, killHard, removeDir, startProcess, tempDir, waitForDelivery, writeConfig, type RunningStrata } from '../fixtures/strata.js';

const MARKER = 'secret-marker-7d41c0';
const config = parseConfig(clicksConfig({ delivery: { maxSeconds: 0.2 } }, 2));

/** Strata in this process, without its HTTP edge (ingest goes through the Ingestor, as the HTTP route does). */
async function open(dataDir: string, masterKey: Buffer | null): Promise<{ strata: Strata; logs: string[]; close(): Promise<void> }> {
  const logs: string[] = [];
  const strata = await Strata.open({ config, dataDir, masterKey, log: (message) => logs.push(message) });
  return { strata, logs, close: () => strata.close() };
}

async function ingest(strata: Strata, n: number, tag: string): Promise<void> {
  const result = await strata.ingestor.ingest('clicks', events(n, tag));
  expect(result.failed).toBe(0);
}

function events(n: number, tag: string) {
  return Array.from({ length: n }, (_, i) => ({
    event_id: `${tag}-${i}`,
    ts: new Date(1_764_000_000_000 + i * 1000).toISOString(),
    user_id: `u${i % 7}`,
    page: `/${MARKER}/${tag}/${i}`,
  }));
}

/** Every file and folder under `dir` (the folder itself included) with its size and mtime: what "changed nothing" compares. */
async function listing(dir: string): Promise<string[]> {
  const out: string[] = [];
  const visit = async (path: string, name: string) => {
    const info = await stat(path);
    out.push(`${name} ${info.isDirectory() ? 'dir' : info.size} ${info.mtimeMs}`);
    if (info.isDirectory()) for (const entry of (await readdir(path)).sort()) await visit(join(path, entry), `${name}/${entry}`);
  };
  await visit(dir, '.');
  return out;
}

/** The bytes of every log segment under the data directory. */
async function segmentBytes(dataDir: string): Promise<Buffer[]> {
  const out: Buffer[] = [];
  const streamDir = join(dataDir, 'stream', 'clicks');
  // Shard folders only: the stream's checkpoint file (and its `.tmp` while it is rewritten) sit beside them.
  for (const shard of await readdir(streamDir, { withFileTypes: true })) {
    if (!shard.isDirectory()) continue;
    for (const name of await readdir(join(streamDir, shard.name))) out.push(await readFile(join(streamDir, shard.name, name)));
  }
  return out;
}

describe('encryption at rest (log segments, keyring, start-up rules, rotation)', () => {
  let root: string;
  const master = randomBytes(32);
  let dataDir: string;
  /** The master key after rotation. */
  let rotated: Buffer;

  beforeAll(async () => {
    root = await tempDir('strata-enc-');
    dataDir = join(root, 'data');
  });
  afterAll(async () => removeDir(root));

  it('encrypts the log of a new data directory: the marker is nowhere in its segments, and delivery reads them', async () => {
    const server = await open(dataDir, master);
    try {
      expect(server.strata.keyring).not.toBeNull();
      expect(server.logs.some((line) => line.includes('encryption at rest is off'))).toBe(false);
      await ingest(server.strata, 50, 'first');
      // The delivery thread opens keyring.db in its own connection and reads the sealed segments.
      await waitForDelivery(server as unknown as RunningStrata);
      const segments = await segmentBytes(dataDir);
      expect(segments.reduce((sum, bytes) => sum + bytes.length, 0)).toBeGreaterThan(50 * 28);
      for (const bytes of segments) expect(bytes.includes(MARKER)).toBe(false);
      expect((await readdir(dataDir)).includes('keyring.db')).toBe(true);
    } finally {
      await server.close();
    }
  });

  it('refuses to start without the key or with a wrong one, and changes nothing in the data directory', async () => {
    const before = await listing(dataDir);
    const noKey = open(dataDir, null);
    await expect(noKey).rejects.toThrow(ConfigError);
    await expect(noKey).rejects.toThrow(`data directory ${dataDir} is encrypted: set STRATA_MASTER_KEY or pass --key-file`);
    await expect(open(dataDir, randomBytes(32))).rejects.toThrow(
      /the master key given is not the key of this data directory/,
    );
    expect(await listing(dataDir)).toEqual(before);
  });

  it('restarts with the right key and serves what was logged', async () => {
    const server = await open(dataDir, master);
    try {
      let pages: string[] = [];
      for (let shard = 0; shard < 2; shard++) {
        pages = pages.concat((await server.strata.stream.read('clicks', shard, asSeq(1), 100)).map((r) => r.data.toString()));
      }
      expect(pages).toHaveLength(50);
      expect(pages.every((record) => record.includes(MARKER))).toBe(true);
    } finally {
      await server.close();
    }
  });

  it('`strata keys rotate` re-wraps the keys: the new key starts Strata, the old one is refused', async () => {
    const next = (rotated = randomBytes(32));
    const oldFile = join(root, 'old.key');
    const newFile = join(root, 'new.key');
    await writeFile(oldFile, master.toString('base64'), { mode: 0o600 });
    await writeFile(newFile, next, { mode: 0o600 });
    const segmentsBefore = await segmentBytes(dataDir);

    // Refused while another live process holds the data directory.
    await writeFile(join(dataDir, 'strata.lock'), String(process.ppid));
    await expect(rotateMasterKey({ data: dataDir, keyFile: oldFile, newKeyFile: newFile, env: {} })).rejects.toThrow(/is in use by process/);
    // A lock left by a stopped Strata is taken over, as `strata start` does.
    await writeFile(join(dataDir, 'strata.lock'), '');
    // Refused with a wrong current key.
    await expect(rotateMasterKey({ data: dataDir, newKeyFile: newFile, env: { STRATA_MASTER_KEY: randomBytes(32).toString('base64') } })).rejects.toThrow(
      /not the key of this data directory/,
    );

    const printed: string[] = [];
    const log = console.log;
    console.log = (line: string) => printed.push(line);
    try {
      await buildProgram().parseAsync(['node', 'strata', 'keys', 'rotate', '--data', dataDir, '--key-file', oldFile, '--new-key-file', newFile]);
    } finally {
      console.log = log;
    }
    expect(printed.join('\n')).toMatch(/re-wrapped \d+ data key\(s\)/);
    // No data was rewritten.
    expect(await segmentBytes(dataDir)).toEqual(segmentsBefore);
    await expect(open(dataDir, master)).rejects.toThrow(/not the key of this data directory/);
    const server = await open(dataDir, next);
    try {
      expect((await server.strata.stream.read('clicks', 0, asSeq(1), 1))[0]!.data.toString()).toContain(MARKER);
      await ingest(server.strata, 5, 'after');
    } finally {
      await server.close();
    }
  });

  it('`strata start --key-file` refuses a key file others may read and a wrong key, and starts with the right one', async () => {
    const configPath = await writeConfig(root, clicksConfig({}, 2));
    const keyPath = join(root, 'start.key');
    await writeFile(keyPath, rotated.toString('base64'), { mode: 0o644 });
    await chmod(keyPath, 0o644);
    await expect(startProcess(configPath, dataDir, ['--key-file', keyPath])).rejects.toThrow(/start\.key is accessible to group or others \(mode 0644\)/);
    const wrongPath = join(root, 'wrong.key');
    await writeFile(wrongPath, randomBytes(32), { mode: 0o600 });
    await expect(startProcess(configPath, dataDir, ['--key-file', wrongPath])).rejects.toThrow(/not the key of this data directory/);
    await chmod(keyPath, 0o600);
    const server = await startProcess(configPath, dataDir, ['--key-file', keyPath]);
    await killHard(server.child);
  });

  it('runs unencrypted without a key and says so once; refuses a key on an unencrypted directory that holds data', async () => {
    const plainDir = join(root, 'plain');
    const server = await open(plainDir, null);
    try {
      expect(server.strata.keyring).toBeNull();
      expect(server.logs.filter((line) => line.includes('encryption at rest is off'))).toHaveLength(1);
      await ingest(server.strata, 3, 'plain');
    } finally {
      await server.close();
    }
    const before = await listing(plainDir);
    await expect(open(plainDir, master)).rejects.toThrow(/holds unencrypted data and a master key was given/);
    expect(await listing(plainDir)).toEqual(before);
  });
});
